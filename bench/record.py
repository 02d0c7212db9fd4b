"""Record a real Postfix maillog for the replay benchmark.

Starts a private Postfix instance in a temporary directory (own config_directory,
queue_directory and maillog_file, loopback ports, no chroot), drives SMTP sessions with
smtplib (deliveries, rejected recipients, aborted sessions, a submission service with its
own syslog_name), rebuilds a lookup table and reloads once in the middle, stops Postfix and
copies the log. Inputs: output path, session count. Output: the recorded log file.
Errors: RuntimeError when Postfix does not start or the log stays empty. Needs root and
the Debian postfix package; not used by the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = bench.example.test
mydestination = bench.example.test, localhost
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
default_transport = discard
local_transport = discard
relay_transport = discard
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_recipient_access lmdb:{root}/conf/rcpt_access
virtual_alias_maps = lmdb:{root}/conf/virtual
max_idle = 5s
"""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(root: Path, smtp_port: int, sub_port: int) -> Path:
    """Write main.cf, master.cf and the lookup tables; return the config directory."""
    conf = root / "conf"
    for sub in ("conf", "queue", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "data", "postfix")
    (conf / "main.cf").write_text(MAIN_CF.format(root=root))
    lines = []
    for entry in Path("/etc/postfix/master.cf").read_text().splitlines():
        fields = entry.split()
        if entry[:1].isalnum() and len(fields) >= 8:
            fields[4] = "n"  # no chroot: the private queue has no chroot files
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"127.0.0.1:{smtp_port}"
            lines.append("  ".join(fields))
        else:
            lines.append(entry)
    lines.append(f"127.0.0.1:{sub_port} inet n - n - - smtpd -o syslog_name=postfix/submission")
    (conf / "master.cf").write_text("\n".join(lines) + "\n")
    (conf / "rcpt_access").write_text("blocked@bench.example.test REJECT no thanks\n")
    (conf / "virtual").write_text("alias@bench.example.test u@bench.example.test\n")
    for table in ("rcpt_access", "virtual"):
        subprocess.run(["postmap", "-c", str(conf), f"lmdb:{conf / table}"], check=True)
    return conf


def one_session(port: int, index: int) -> None:
    """One SMTP conversation; the index picks delivery, rejection or an abort."""
    try:
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)
        if index % 10 == 7:
            client.sock.close()  # type: ignore[union-attr]
            return
        rcpts = [f"u{index}@bench.example.test", f"r{index}@remote.example"]
        if index % 10 == 3:
            rcpts.append("blocked@bench.example.test")
        if index % 10 == 5:
            rcpts = ["alias@bench.example.test"]
        body = f"Subject: bench {index}\n\nmessage {index}\n"
        client.sendmail(f"s{index}@example.org", rcpts, body)
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass


def drive(ports: tuple[int, int], sessions: int, conf: Path, threads: int = 4) -> None:
    """Run ``sessions`` SMTP sessions over a few threads; rebuild a table and reload."""
    counter = iter(range(sessions))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            one_session(ports[index % 5 == 0], index)
            if index and index % (sessions // 4) == 0:
                virtual = conf / "virtual"
                virtual.write_text(virtual.read_text() + f"a{index}@bench.example.test u\n")
                subprocess.run(["postmap", "-c", str(conf), f"lmdb:{virtual}"], check=False)
            if index == sessions // 2:
                subprocess.run(["postfix", "-c", str(conf), "reload"], check=False)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def record(out: Path, sessions: int) -> Path:
    """Record a log of ``sessions`` SMTP sessions from a private Postfix into ``out``."""
    root = Path(tempfile.mkdtemp(prefix="pfwatch-bench-"))
    root.chmod(0o755)  # the postfix user must reach data_directory
    smtp_port, sub_port = free_port(), free_port()
    conf = write_config(root, smtp_port, sub_port)
    env = dict(os.environ, MAIL_CONFIG=str(conf))
    subprocess.run(["postfix", "-c", str(conf), "start"], check=True, env=env)
    try:
        time.sleep(1.5)
        drive((smtp_port, sub_port), sessions, conf)
        time.sleep(8)  # let deliveries finish and idle daemons exit
    finally:
        subprocess.run(["postfix", "-c", str(conf), "stop"], check=False, env=env)
        time.sleep(1.5)
    log = root / "maillog"
    if not log.exists() or log.stat().st_size == 0:
        raise RuntimeError(f"Postfix wrote no log to {log}")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(log, out)
    shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sessions", type=int, default=3000)
    args = parser.parse_args()
    path = record(args.out, args.sessions)
    print(f"recorded {sum(1 for _ in path.open('rb'))} lines into {path}")


if __name__ == "__main__":
    main()
