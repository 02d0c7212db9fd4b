"""A Postfix container and a pfwatch sidecar sharing its PID namespace and volumes.

The configuration and log directories are host directories bind-mounted into both (the
sidecar read-only), so the test edits the configuration the way an operator edits a
volume: by rename and in place. Everything uses host networking on loopback ports.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pfwatch.instance.local import free_port
from tests.containers.conftest import owned_by_sidecar
from tests.containers.engine import PFWATCH_IMAGE, POSTFIX_IMAGE, Containers, docker

Event = dict[str, Any]
SESSION_LINE = re.compile(r"postfix/smtpd\[(\d+)\]: (dis)?connect from ")
MAX_IDLE = 4


class Sidecar:
    """The two containers of one scenario (see the module docstring)."""

    def __init__(self, group: Containers, root: Path) -> None:
        self.group = group
        self.config = root / "etc"
        self.logs = root / "log"
        self.state = owned_by_sidecar(root / "state")
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.logs.mkdir()
        group.log_files.append(self.logs / "maillog")
        self.postfix = ""
        self.pfwatch = ""

    # ---------------------------------------------------------------- set-up
    def prepare_config(self) -> None:
        """The image's /etc/postfix, on a loopback port, short max_idle, an access table."""
        self.config.mkdir()
        docker(
            "run", "--rm", "--network", "host", "-v", f"{self.config}:/mnt", POSTFIX_IMAGE,
            "cp", "-a", "/etc/postfix/.", "/mnt/",
        )  # fmt: skip
        self.write("access", "blocked@client.test REJECT\n")
        self.postconf(
            maillog_file="/var/log/postfix/maillog",
            max_idle=f"{MAX_IDLE}s",
            smtpd_sender_restrictions="check_sender_access hash:/etc/postfix/access",
            local_transport="discard:",
            smtpd_banner="$myhostname ESMTP first",
        )
        master = re.sub(
            r"^smtp\s+inet\s.*$",
            f"127.0.0.1:{self.smtp_port} inet n - n - - smtpd",
            (self.config / "master.cf").read_text(),
            count=1,
            flags=re.MULTILINE,
        )
        assert f"127.0.0.1:{self.smtp_port}" in master, "master.cf smtp line not found"
        (self.config / "master.cf").write_text(master)
        for name in ("main.cf", "master.cf", "access"):  # past Postfix's 2 s cool-down
            os.utime(self.config / name, (os.path.getmtime(self.config / name) - 5,) * 2)

    def postconf(self, *, in_place: bool = False, **params: str) -> None:
        """Set main.cf parameters, by rename (default) or rewriting the file in place."""
        lines = (self.config / "main.cf").read_text().splitlines()
        kept = [line for line in lines if line.split("=")[0].strip() not in params]
        kept += [f"{name} = {value}" for name, value in params.items()]
        self.write("main.cf", "\n".join(kept) + "\n", in_place=in_place)

    def write(self, name: str, text: str, *, in_place: bool = False) -> None:
        path = self.config / name
        if in_place:  # same inode, never empty: overwrite, then cut the rest
            with path.open("r+") as handle:
                handle.write(text)
                handle.truncate()
            return
        temporary = path.with_name(f".{name}.new")
        temporary.write_text(text)
        temporary.rename(path)

    def start_postfix(self) -> str:
        """Postfix's entry point rebuilds the table with postmap, then starts Postfix."""
        self.postfix = self.group.run(
            "postfix",
            POSTFIX_IMAGE,
            options=[
                "--init",
                "-v", f"{self.config}:/etc/postfix",
                "-v", f"{self.logs}:/var/log/postfix",
                "-e", "POSTFIX_POSTMAP=hash:/etc/postfix/access",
            ],
        )  # fmt: skip
        self.group.wait_for(self.master_pid, "the Postfix master runs", timeout=60)
        self.group.wait_for(lambda: self.banner().startswith("220"), "SMTP answers")
        return self.postfix

    def start_pfwatch(self) -> str:
        self.pfwatch = self.group.run(
            "pfwatch",
            PFWATCH_IMAGE,
            "--debounce", "0.1",
            options=[
                "--pid", f"container:{self.postfix}",
                "--read-only", "--tmpfs", "/tmp",
                "--user", "65532:65532", "--cap-drop", "ALL",
                "--security-opt", "no-new-privileges",
                "-v", f"{self.config}:/etc/postfix:ro",
                "-v", f"{self.logs}:/var/log/postfix:ro",
                "-v", f"{self.state}:/var/lib/pfwatch",
                "-e", f"PFWATCH_LISTEN=127.0.0.1:{self.http_port}",
                "--health-interval", "1s", "--health-start-period", "0s",
                "--health-retries", "3", "--health-timeout", "4s",
            ],
        )  # fmt: skip
        self.group.wait_for(lambda: self.find("watch_started"), "pfwatch watch started")
        return self.pfwatch

    # ---------------------------------------------------------------- Postfix side
    def master_pid(self) -> int | None:
        for entry in self.group.processes(self.postfix):
            if entry.cmdline[:1] and entry.cmdline[0].endswith("master"):
                return entry.pid
        return None

    def daemons(self, *names: str) -> dict[int, str]:
        """pid -> daemon name of the master's children, in the shared PID namespace."""
        master = self.master_pid()
        found = {}
        for entry in self.group.processes(self.postfix):
            daemon = Path(entry.cmdline[0]).name if entry.cmdline else ""
            if entry.ppid == master and (not names or daemon in names):
                found[entry.pid] = daemon
        return found

    def banner(self) -> str:
        try:
            with smtplib.SMTP(timeout=5) as client:
                code, text = client.connect("127.0.0.1", self.smtp_port)
                return f"{code} {text.decode()}"
        except (OSError, smtplib.SMTPException):
            return ""

    def send_mail(self, rcpt: str = "postmaster@localhost", sender: str = "a@client.test") -> None:
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10) as client:
            client.sendmail(sender, [rcpt], b"Subject: test\r\n\r\nhello\r\n")

    def session(self) -> smtplib.SMTP:
        """An open SMTP session (one smtpd busy), once the sidecar has seen every smtpd:
        a process born just before an edit but not polled yet cannot be counted stale."""
        client = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=10)
        self.group.closers.append(client.close)
        client.ehlo("client.test")
        self.group.wait_for(
            lambda: all(self.find("process_started", pid=pid) for pid in self.daemons("smtpd")),
            "the sidecar sees every smtpd",
        )
        return client

    def serving(self) -> set[int]:
        """The smtpds in a session now, by the maillog (``connect from`` not followed by
        ``disconnect from``). Not simply every smtpd: when a client connects while the
        only smtpd is finishing the previous session, master spawns another, and either
        may accept; the other stays idle, and an idle smtpd checks its tables before it
        accepts a client (src/smtpd/smtpd.c pre_accept), so no table edit leaves it stale."""
        log = self.logs / "maillog"
        open_sessions: set[int] = set()
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            found = SESSION_LINE.search(line)
            if found:
                pid = int(found.group(1))
                (open_sessions.discard if found.group(2) else open_sessions.add)(pid)
        return open_sessions & set(self.daemons("smtpd"))

    # ---------------------------------------------------------------- pfwatch side
    def events(self) -> list[Event]:
        out, _ = self.group.logs(self.pfwatch)
        found = []
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and "event" in event:
                    found.append(event)
        return found

    def find(self, name: str, since: int = 0, **fields: Any) -> list[Event]:
        return [
            e
            for e in self.events()[since:]
            if e["event"] == name and all(e.get(k) == v for k, v in fields.items())
        ]

    def about(self, pids: set[int]) -> dict[str, list[Any]]:
        """What the sidecar reported and the maillog says about ``pids`` (for failures)."""
        marks = tuple(f"[{pid}]" for pid in pids)
        log = self.logs / "maillog"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return {
            "events": [e for e in self.events() if e.get("pid") in pids],
            "maillog": [line for line in lines if any(mark in line for mark in marks)],
        }

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        _, text = self.get("/metrics")
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return values
