"""Record the demo scenario shipped with pfwatch (``pfwatch explain --demo``) from a real Postfix.

The scenario re-enacts the field report (../shared/seeds: a virtual-mailbox domain commented
out of the file list behind ``virtual_mailbox_domains`` went live minutes later without a
reload) on a private instance of the host's Postfix, with ``max_idle`` shortened from 100 s
to ``--max-idle`` seconds, and goes on with a table rebuild and a reload:

1. start (smtpd -v, trivial-rewrite -v, ``virtual_mailbox_domains = <etc>/vdomains`` file
   list, ``virtual_mailbox_maps`` and ``check_client_access`` hash tables, relayhost = an
   in-process SMTP sink playing the upstream MTA);
2. mail to ex-1@example.com: delivered by virtual(8); an SMTP session held open with a mail;
3. ``vdomains`` edited (example.com commented out, rename into place) at a noted time;
   mail right after: still virtual (trivial-rewrite still runs with the old list);
4. quiet until /proc shows the old trivial-rewrite gone (clients let go after ipc_idle,
   then max_idle), then mail again: now relayed to the upstream sink;
5. ``client_access`` edited and rebuilt with postmap at a noted time; the next connection
   makes the old smtpd log ``table ... has changed -- restarting``;
6. ``smtpd_banner`` edited in main.cf, then ``postfix reload`` at a noted time; more mail;
   idle timeouts; stop.

Outputs (paths of the private instance are rewritten to the standard Debian locations,
so no path of the recording machine is shipped):

- ``pfwatch/demo/scenario.log``: the instance's maillog (postlogd format, < 200 KB);
- ``pfwatch/demo/scenario.json``: schema below;
- ``pfwatch/demo/config/``: the configuration directory as it was at the end.

scenario.json (times are float POSIX seconds, UTC; the log's timestamps are UTC too):
``format`` (1), ``description``, ``postfix_version``, ``recorded_at``, ``year``,
``timezone``, ``hostname``, ``config_dir`` (relative to the JSON file), ``max_idle``,
``ipc_idle``, ``max_use``, ``paths`` (logical -> shipped), ``changes`` (list of
{``at``, ``file``, ``kind``, ``method``, ``parameter``, ``summary``}), ``actions`` (list of
{``at``, ``action``: postmap|reload|start|stop, ``target``}), ``mail`` (list of
{``at``, ``queue_id``, ``sender``, ``recipient``, ``expected_route``}), ``sessions`` (list of
{``opened_at``, ``closed_at``}), ``config_before`` / ``config_after`` ({file name: text}),
and ``truth.processes`` (from /proc, sampled every 50 ms: {``pid``, ``name``, ``service``,
``born_at``, ``last_seen_at``, ``gone_by``}; ``gone_by`` is null while still running at stop).

Re-record (root and Debian's postfix needed; about two minutes)::

    sudo .venv/bin/python scripts/record_demo.py            # writes pfwatch/demo/
    sudo .venv/bin/python scripts/record_demo.py --out /tmp/x --max-idle 10

Errors: exits non-zero with a message when Postfix is unavailable or a step's expected log
line does not appear in time (the recording is then not written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import smtplib
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pfwatch.instance.local import PostfixInstance, PostfixUnavailable

REPO = Path(__file__).resolve().parents[1]
LOG_LIMIT = 200_000
RESOLVE_CACHE_TTL = 30
VDOMAINS_BEFORE = "example.com\nexample1.com\nexample2.com\n"
VDOMAINS_AFTER = "#example.com\nexample1.com\nexample2.com\n"
VMAILBOX = "ex-1@example.com example.com/ex-1/\nex-1@example1.com example1.com/ex-1/\n"
CLIENT_ACCESS_BEFORE = "192.0.2.1 REJECT blocked by policy\n"
CLIENT_ACCESS_AFTER = CLIENT_ACCESS_BEFORE + "192.0.2.2 REJECT blocked by policy\n"
NOTES = [
    "The vdomains edit reaches routing only through trivial-rewrite, which reads the file "
    "list once at start; it exited by max_idle after its clients let go (ipc_idle 5 s).",
    "qmgr's resolve client reuses its last reply for the same address for 30 s "
    "(src/global/resolve_clnt.c:198-205): a mail sent after trivial-rewrite restarted but "
    "within 30 s of the previous resolution of that address still went to virtual(8).",
    "Programs re-read a main.cf younger than about 2 s until it cools down "
    "(dict_load_file_xt, src/util/dict.c): processes started right after an edit wait.",
    "Paths of the private recording instance were rewritten to Debian's standard ones.",
]
CONFIG_FILES = ("main.cf", "master.cf", "vdomains", "vmailbox", "client_access")


class ProcessSampler(threading.Thread):
    """Samples the instance's process table from /proc until stopped: the ground truth."""

    def __init__(self, pf: PostfixInstance, interval: float = 0.05) -> None:
        super().__init__(name="pfwatch-demo-sampler", daemon=True)
        self.pf, self.interval = pf, interval
        self.seen: dict[int, dict[str, Any]] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            now = time.time()
            current = {info.pid: info for info in self.pf.processes(include_master=True)}
            for pid, info in current.items():
                row = self.seen.setdefault(
                    pid,
                    {
                        "pid": pid,
                        "name": info.name,
                        "service": info.service,
                        "born_at": round(info.started_at, 3),
                        "gone_by": None,
                    },
                )
                row.update(name=info.name, service=info.service, last_seen_at=round(now, 3))
            for pid, row in self.seen.items():
                if pid not in current and row["gone_by"] is None:
                    row["gone_by"] = round(now, 3)
            self._halt.wait(self.interval)

    def stop(self) -> list[dict[str, Any]]:
        self._halt.set()
        self.join()
        return sorted(self.seen.values(), key=lambda row: (row["born_at"], row["pid"]))


class Recorder:
    """Drives the scenario and keeps the notes that become scenario.json."""

    def __init__(self, pf: PostfixInstance) -> None:
        self.pf = pf
        self.changes: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.mail: list[dict[str, Any]] = []
        self.sessions: list[dict[str, Any]] = []

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def send(self, recipient: str, route: str, why: str = "") -> str:
        at = time.time()
        queue_id = self.pf.send_mail("sender@client.test", recipient, "demo\n")
        self.mail.append(
            {
                "at": round(at, 3),
                "queue_id": queue_id,
                "sender": "sender@client.test",
                "recipient": recipient,
                "expected_route": route,
                "why": why,
            }
        )
        relay = "virtual" if route == "virtual" else r"127\.0\.0\.1\[127\.0\.0\.1\]:\d+"
        self.pf.wait_for_log(rf"{queue_id}: to=<{recipient}>, relay={relay},.*status=sent", 20)
        self.say(f"mail {queue_id} to {recipient}: {route}")
        return queue_id

    def session(self, helo: str, hold: float = 0.0) -> str:
        """One SMTP session without mail (EHLO, NOOP, QUIT), held ``hold`` seconds."""
        opened = time.time()
        client = smtplib.SMTP(local_hostname=helo, timeout=30)
        _, reply = client.connect(self.pf.host, self.pf.port)
        client.ehlo()
        time.sleep(hold)
        client.noop()
        client.quit()
        closed = time.time()
        banner = reply.decode("utf-8", "replace")
        self.sessions.append(
            {"opened_at": round(opened, 3), "closed_at": round(closed, 3), "helo": helo}
        )
        self.say(f"session {helo} held {closed - opened:.1f}s")
        return banner

    def change(self, name: str, text: str, parameter: str, summary: str) -> float:
        self.pf.write_file(name, text)
        at = time.time()
        self.changes.append(
            {
                "at": round(at, 3),
                "file": str(self.pf.config_dir / name),
                "kind": "table_source" if name == "client_access" else "file",
                "method": "rename",
                "parameter": parameter,
                "summary": summary,
            }
        )
        self.say(f"edited {name}: {summary}")
        return at

    def action(self, action: str, target: str, at: float) -> None:
        self.actions.append({"at": round(at, 3), "action": action, "target": target})
        self.say(f"{action} {target}")

    def wait_gone(self, name: str, timeout: float) -> None:
        """Wait until no process named ``name`` that existed now is left."""
        old = {info.pid for info in self.pf.processes() if info.name == name}
        for pid in old:
            self.pf.wait_for_exit(pid, timeout)
        self.say(f"old {name} processes gone: {sorted(old)}")


def scenario(rec: Recorder, max_idle: int) -> None:
    pf = rec.pf
    time.sleep(1.5)
    rec.send("ex-1@example.com", "virtual")
    time.sleep(2)
    rec.session("held.client.test", hold=5.0)
    time.sleep(1.5)
    rec.change("vdomains", VDOMAINS_AFTER, "virtual_mailbox_domains", "example.com commented out")
    time.sleep(1)
    rec.send("ex-1@example.com", "virtual", "the running trivial-rewrite read the old list")
    resolved_at = time.time()
    rec.wait_gone("trivial-rewrite", timeout=max_idle + 30)
    # qmgr's resolve client reuses its last reply for the same address for 30 s
    # (resolve_clnt.c:198-205), even though trivial-rewrite has restarted meanwhile.
    time.sleep(2)
    if time.time() < resolved_at + RESOLVE_CACHE_TTL - 5:
        rec.send("ex-1@example.com", "virtual", "qmgr's 30 s resolve cache: old answer reused")
    time.sleep(max(2.0, resolved_at + RESOLVE_CACHE_TTL + 1 - time.time()))
    rec.send("ex-1@example.com", "relay", "new trivial-rewrite, qmgr cache expired")
    time.sleep(1.5)
    rec.change("client_access", CLIENT_ACCESS_AFTER, "smtpd_client_restrictions", "192.0.2.2 added")
    rec.action("postmap", f"hash:{pf.config_dir / 'client_access'}", pf.postmap("client_access"))
    time.sleep(1.5)
    since = pf.log_offset()
    rec.session("after-postmap.client.test")
    pf.wait_for_log(r"smtpd\[\d+\]: table hash:\S+ has changed -- restarting", 10, since=since)
    time.sleep(2)
    pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP (edited)"})
    rec.changes.append(
        {
            "at": round(time.time(), 3),
            "file": str(pf.main_cf),
            "kind": "file",
            "method": "rename",
            "parameter": "smtpd_banner",
            "summary": "smtpd_banner = $myhostname ESMTP (edited)",
        }
    )
    rec.say("edited main.cf: smtpd_banner")
    time.sleep(2)
    since = pf.log_offset()
    rec.action("reload", "postfix", pf.reload())
    pf.wait_for_log(r"reload -- version", 10, since=since)
    time.sleep(1.5)
    banner = rec.session("after-reload.client.test")
    assert "(edited)" in banner, banner
    rec.wait_gone("smtpd", timeout=max_idle + 10)
    time.sleep(2)


def snapshot(pf: PostfixInstance) -> dict[str, str]:
    return {name: (pf.config_dir / name).read_text(encoding="utf-8") for name in CONFIG_FILES}


def path_map(pf: PostfixInstance) -> list[tuple[str, str]]:
    """Private instance paths -> standard locations, longest first."""
    return [
        (str(pf.maillog), "/var/log/mail.log"),
        (str(pf.config_dir), "/etc/postfix"),
        (str(pf.queue_dir), "/var/spool/postfix"),
        (str(pf.data_dir), "/var/lib/postfix"),
        (str(pf.mailbox_dir), "/var/spool/virtual"),
        (str(pf.root), "/var"),  # maillog_file_prefixes: Postfix's default is /var
    ]


def neutral(text: str, mapping: list[tuple[str, str]]) -> str:
    for private, public in mapping:
        text = text.replace(private, public)
    return text


def record(out: Path, max_idle: int) -> int:
    os.environ["TZ"] = "UTC"
    time.tzset()
    pf = PostfixInstance(max_idle=max_idle, verbose=("smtpd", "rewrite"), keep_dir=False)
    try:
        pf.prepare()  # the tables must exist before the first start
    except PostfixUnavailable as exc:
        print(f"record_demo: {exc}", file=sys.stderr)
        return 2
    etc = pf.config_dir
    pf.write_file("vdomains", VDOMAINS_BEFORE)
    pf.write_file("vmailbox", VMAILBOX)
    pf.write_file("client_access", CLIENT_ACCESS_BEFORE)
    pf.postmap("vmailbox")
    pf.postmap("client_access")
    pf.edit_main_cf(
        {
            "virtual_mailbox_domains": f"{etc}/vdomains",
            "virtual_mailbox_base": str(pf.mailbox_dir),
            "virtual_mailbox_maps": f"hash:{etc}/vmailbox",
            "virtual_uid_maps": "static:65534",
            "virtual_gid_maps": "static:65534",
            "smtpd_client_restrictions": f"check_client_access hash:{etc}/client_access",
        }
    )
    time.sleep(2.2)  # let main.cf cool down (see pfwatch.instance.local) before the start
    rec = Recorder(pf)
    before = snapshot(pf)
    sampler = ProcessSampler(pf)
    try:
        pf.start(probe=False)
        rec.action("start", "postfix", pf.started_at or time.time())
        sampler.start()
        scenario(rec, max_idle)
        after = snapshot(pf)
        stop_at = time.time()
        pf.stop()
        rec.action("stop", "postfix", stop_at)
        truth = sampler.stop()
        mapping = path_map(pf)
        write_outputs(
            out,
            pf=pf,
            rec=rec,
            before=before,
            after=after,
            truth=truth,
            mapping=mapping,
            max_idle=max_idle,
        )
    finally:
        if sampler.is_alive():
            sampler.stop()
        pf.close()
    return 0


def write_outputs(
    out: Path,
    *,
    pf: PostfixInstance,
    rec: Recorder,
    before: dict[str, str],
    after: dict[str, str],
    truth: list[dict[str, Any]],
    mapping: list[tuple[str, str]],
    max_idle: int,
) -> None:
    log = neutral(pf.log_text(), mapping)
    if len(log.encode("utf-8")) > LOG_LIMIT:
        rejected = out / "scenario.log.rejected"
        rejected.write_text(log, encoding="utf-8")
        raise SystemExit(f"record_demo: log is {len(log)} bytes, over {LOG_LIMIT}: see {rejected}")
    version = pf.postconf("-dh", "mail_version").strip()
    doc: dict[str, Any] = {
        "format": 1,
        "description": (
            "Field-report re-enactment on a real Postfix: a domain commented out of the "
            "virtual_mailbox_domains file list goes live when trivial-rewrite exits "
            "(ipc_idle then max_idle), not at smtpd's idle timeout; then a postmap rebuild "
            "(table has changed -- restarting) and a postfix reload."
        ),
        "postfix_version": version,
        "recorded_at": round(time.time(), 3),
        "year": time.gmtime().tm_year,
        "timezone": "UTC",
        "hostname": pf.layout.hostname.split(".")[0],
        "config_dir": "config",
        "max_idle": max_idle,
        "ipc_idle": 5,
        "max_use": 100,
        "paths": {"config_directory": "/etc/postfix", "maillog_file": "/var/log/mail.log"},
        "notes": NOTES,
        "changes": rec.changes,
        "actions": rec.actions,
        "mail": rec.mail,
        "sessions": rec.sessions,
        "config_before": before,
        "config_after": after,
        "truth": {"processes": truth},
    }
    text = neutral(json.dumps(doc, indent=1, ensure_ascii=False), mapping)
    config = out / "config"
    if config.exists():
        shutil.rmtree(config)
    config.mkdir(parents=True)
    for name, content in after.items():
        (config / name).write_text(neutral(content, mapping), encoding="utf-8")
    (out / "scenario.log").write_text(log, encoding="utf-8")
    (out / "scenario.json").write_text(text + "\n", encoding="utf-8")
    print(f"wrote {out}/scenario.log ({len(log)} bytes), scenario.json, config/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "pfwatch" / "demo")
    parser.add_argument("--max-idle", type=int, default=10)
    args = parser.parse_args()
    return record(args.out, args.max_idle)


if __name__ == "__main__":
    sys.exit(main())
