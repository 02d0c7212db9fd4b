"""The journald source against the real journalctl, on journal files written for the test.

``systemd-journal-remote`` (Debian package of that name) turns journal export format into
real journal files in a temporary directory, and appends to them; journalctl reads them
with ``--directory``. Checked: the mail-facility match, one-shot reading, following from a
cursor, resuming after a restart with nothing lost and nothing repeated, and the watch
service on the journal end to end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pfwatch.instance.local import free_port
from pfwatch.maillog.reader import LogClassifier
from pfwatch.settings import Settings
from pfwatch.sources.journald import JournalRecord, JournalSource
from pfwatch.testing.watch_thread import WatchThread

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
BOOT_ID = "0123456789abcdef0123456789abcdef"
MASTER = "smtp inet n - n - - smtpd\n"


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    if not JOURNAL_REMOTE.exists() or shutil.which("journalctl") is None:
        reason = "needs journalctl and systemd-journal-remote (Debian packages)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    directory = tmp_path / "journal"
    directory.mkdir()
    return directory


class Writer:
    """Appends entries to one journal file; monotonic clock and sequence keep growing."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "remote.journal"
        self.count = 0

    def write(self, *entries: tuple[str, int, str, int], trusted: str = "") -> None:
        """Entries as (identifier, pid, message, syslog facility), stamped now;
        ``trusted`` adds export-format lines (journald's trusted fields) to each."""
        blocks = []
        now = int(time.time() * 1e6)
        for identifier, pid, message, facility in entries:
            self.count += 1
            blocks.append(
                f"__REALTIME_TIMESTAMP={now + self.count}\n"
                f"__MONOTONIC_TIMESTAMP={self.count * 1000}\n"
                f"_BOOT_ID={BOOT_ID}\n_HOSTNAME=mx\n_PID={pid}\n{trusted}"
                f"SYSLOG_FACILITY={facility}\nSYSLOG_IDENTIFIER={identifier}\n"
                f"MESSAGE={message}\n\n"
            )
        subprocess.run(
            [str(JOURNAL_REMOTE), f"--output={self.path}", "-"],
            input="".join(blocks).encode(),
            check=True,
            capture_output=True,
        )


def smtpd(pid: int, text: str = "connect from a.example[192.0.2.1]") -> tuple[str, int, str, int]:
    return ("postfix/smtpd", pid, text, 2)


def poll_until(source: JournalSource, count: int, timeout: float = 10.0) -> list[JournalRecord]:
    found: list[JournalRecord] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += source.poll()
        time.sleep(0.05)
    return found


def pids(records: list[JournalRecord]) -> list[int]:
    classifier = LogClassifier()
    events = [classifier.feed_journal(r.fields) for r in records]
    return [e.pid for e in events if e is not None]


def test_one_shot_reading_takes_only_the_mail_facility(journal_dir: Path) -> None:
    writer = Writer(journal_dir)
    writer.write(smtpd(101), ("sshd", 55, "Accepted publickey for root", 4), smtpd(102))
    with JournalSource(directory=str(journal_dir), follow=False, start="beginning") as source:
        records = list(source.records())
        assert source.done
    assert len(records) == 2  # the sshd entry (facility 4) is not even read
    assert pids(records) == [101, 102]
    assert all(r.checkpoint.startswith("s=") for r in records)
    event = LogClassifier().feed_journal(records[0].fields)
    assert event is not None and event.kind == "session_connect" and event.daemon == "smtpd"


def test_following_resumes_after_its_cursor_without_loss_or_repeat(journal_dir: Path) -> None:
    writer = Writer(journal_dir)
    writer.write(smtpd(201))
    source = JournalSource(directory=str(journal_dir), start="beginning", poll_interval=0.05)
    try:
        assert pids(poll_until(source, 1)) == [201]
        writer.write(smtpd(202), smtpd(203))
        assert pids(poll_until(source, 2)) == [202, 203]
        cursor = source.cursor
    finally:
        source.close()
    writer.write(smtpd(204))  # written while nobody follows
    again = JournalSource(directory=str(journal_dir), cursor=cursor, poll_interval=0.05)
    try:
        got = poll_until(again, 1)
        time.sleep(0.5)
        got += again.poll()
        assert pids(got) == [204]
        writer.write(smtpd(205))
        assert pids(poll_until(again, 1)) == [205]
    finally:
        again.close()


class Watching(WatchThread):
    """``pfwatch watch --journal`` in a thread, journalctl pointed at the test's journal."""

    def __init__(self, tmp_path: Path, journalctl: Path) -> None:
        settings = Settings(
            config_dir=tmp_path / "etc",
            maillog=None,
            journal=True,
            state_dir=tmp_path / "state",
            listen_host="127.0.0.1",
            listen_port=free_port(),
            debounce=0.05,
            log_format="json",
        )
        super().__init__(settings, journalctl=str(journalctl), health_every=1.0, poll=0.05)

    def started(self) -> list[int]:
        return [e["pid"] for e in self.events() if e.get("event") == "process_started"]


def test_watch_on_the_journal_survives_a_restart(tmp_path: Path, journal_dir: Path) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "main.cf").write_text("smtpd_banner = one\n")
    (conf / "master.cf").write_text(MASTER)
    journalctl = tmp_path / "journalctl"
    journalctl.write_text(f'#!/bin/sh\nexec journalctl --directory={journal_dir} "$@"\n')
    journalctl.chmod(0o755)
    writer = Writer(journal_dir)
    writer.write(smtpd(8001))  # before the first start: the watcher begins at the end
    first = Watching(tmp_path, journalctl)
    try:
        time.sleep(1.0)
        writer.write(smtpd(8002))
        first.wait(lambda e: e.get("event") == "process_started" and e.get("pid") == 8002)
    finally:
        first.stop()
    writer.write(smtpd(8003))
    second = Watching(tmp_path, journalctl)
    try:
        second.wait(lambda e: e.get("event") == "process_started" and e.get("pid") == 8003)
        time.sleep(0.5)
        assert first.started() == [8002]
        assert second.started() == [8003]
    finally:
        second.stop()


def test_watch_believes_only_lines_journald_says_postfix_wrote(
    tmp_path: Path, journal_dir: Path
) -> None:
    """Lines with journald's trusted fields: smtpd's own count; ``logger`` run by a user
    with a forged tag, and a line whose tag names another pid, do not."""
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "main.cf").write_text("smtpd_banner = one\n")
    (conf / "master.cf").write_text(MASTER)
    journalctl = tmp_path / "journalctl"
    journalctl.write_text(f'#!/bin/sh\nexec journalctl --directory={journal_dir} "$@"\n')
    journalctl.chmod(0o755)
    writer = Writer(journal_dir)
    writer.write(smtpd(8999))  # the journal file exists before the watcher starts at its end
    watching = Watching(tmp_path, journalctl)
    postfix = (
        "_UID=0\n_COMM=smtpd\n_EXE=/usr/lib/postfix/sbin/smtpd\n_SYSTEMD_UNIT=postfix@-.service\n"
    )
    try:
        time.sleep(1.0)
        writer.write(
            smtpd(9002, "idle timeout -- exiting"),
            trusted="_UID=1000\n_COMM=logger\n_EXE=/usr/bin/logger\n"
            "_SYSTEMD_UNIT=session-4.scope\nSYSLOG_PID=9002\n",
        )
        first = watching.wait(
            lambda e: e.get("event") == "log_line_untrusted" and e.get("pid") == 9002
        )
        writer.write(smtpd(9001), trusted=postfix + "SYSLOG_PID=9001\n")
        writer.write(smtpd(9003), trusted=postfix + "SYSLOG_PID=9001\n")
        watching.wait(lambda e: e.get("event") == "process_started" and e.get("pid") == 9001)
        second = watching.wait(
            lambda e: e.get("event") == "log_line_untrusted" and e.get("pid") == 9001
        )
        untrusted = [first, second]
        assert {e["reason"] for e in untrusted} == {"journal_writer"}
        assert "logger" in untrusted[0]["note"]
        assert "journald saw pid 9003" in untrusted[1]["note"]
        time.sleep(0.5)
        assert watching.started() == [9001]
        detected = [e for e in watching.events() if e.get("event") == "process_started"]
        assert all(e["evidence"] == "journal" for e in detected)
    finally:
        watching.stop()
