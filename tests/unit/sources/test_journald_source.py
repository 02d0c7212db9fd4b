"""The journald source against a fake ``journalctl`` (tests/unit/sources/fake_journalctl).

The fake reads entries from a JSON-lines file, honours ``--after-cursor``, ``--lines``,
``--follow`` and matches, and refuses ``--cursor-file`` (broken on systemd 252).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from pfwatch.errors import SourceUnavailable
from pfwatch.sources.journald import JournalRecord, JournalSource

FAKE = str(Path(__file__).with_name("fake_journalctl"))


def entry(n: int, facility: int = 2, message: object = None) -> dict[str, object]:
    return {
        "__CURSOR": f"s=abc;i={n:x}",
        "__REALTIME_TIMESTAMP": str(1_763_769_600_000_000 + n * 1_000_000),
        "SYSLOG_FACILITY": str(facility),
        "SYSLOG_IDENTIFIER": "postfix/smtpd",
        "SYSLOG_PID": str(1000 + n),
        "_HOSTNAME": "mx1",
        "MESSAGE": message if message is not None else f"connect from client{n}[192.0.2.{n}]",
    }


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "journal.jsonl"
    path.write_text("")
    monkeypatch.setenv("FAKE_JOURNAL", str(path))
    monkeypatch.setenv("FAKE_JOURNAL_ARGV_LOG", str(tmp_path / "argv.jsonl"))
    return path


def add(journal: Path, *entries: dict[str, object]) -> None:
    with journal.open("a") as out:
        for item in entries:
            out.write(json.dumps(item) + "\n")


def invocations(journal: Path) -> list[list[str]]:
    log = journal.with_name("argv.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def poll_until(source: JournalSource, count: int, timeout: float = 5.0) -> list[JournalRecord]:
    got: list[JournalRecord] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += source.poll()
        time.sleep(0.01)
    return got


def test_one_shot_catch_up_with_the_mail_facility_only(journal: Path) -> None:
    add(journal, entry(1), entry(2, facility=3), entry(3))
    with JournalSource(journalctl=FAKE, follow=False, start="beginning") as source:
        records = list(source.records())
    assert [r.cursor for r in records] == ["s=abc;i=1", "s=abc;i=3"]
    assert records[0].data == b"connect from client1[192.0.2.1]"
    assert records[0].at == pytest.approx(1_763_769_601.0, abs=1e-6)
    assert records[0].checkpoint == records[0].cursor
    (argv,) = invocations(journal)
    assert "--output=json" in argv and "--lines=all" in argv and "SYSLOG_FACILITY=2" in argv
    assert not any(arg.startswith("--cursor-file") for arg in argv)


def test_follow_resumes_after_the_cursor_and_sees_new_entries(journal: Path) -> None:
    add(journal, entry(1), entry(2), entry(3))
    with JournalSource(journalctl=FAKE, cursor="s=abc;i=1") as source:
        assert [r.cursor for r in poll_until(source, 2)] == ["s=abc;i=2", "s=abc;i=3"]
        add(journal, entry(4))
        assert [r.cursor for r in poll_until(source, 1)] == ["s=abc;i=4"]
        assert source.cursor == "s=abc;i=4"
    argv = invocations(journal)[0]
    assert "--follow" in argv
    assert "--after-cursor=s=abc;i=1" in argv and "--lines=all" in argv


def test_follow_from_the_end_skips_old_entries(journal: Path) -> None:
    add(journal, entry(1), entry(2))
    with JournalSource(journalctl=FAKE, start="end") as source:
        assert poll_until(source, 1, timeout=0.5) == []
        add(journal, entry(3))
        assert [r.cursor for r in poll_until(source, 1)] == ["s=abc;i=3"]
    assert "--lines=0" in invocations(journal)[0]


def test_a_dying_journalctl_is_restarted_after_the_last_cursor(
    journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(journal, *(entry(n) for n in range(1, 8)))
    monkeypatch.setenv("FAKE_JOURNAL_EXIT_AFTER", "3")
    source = JournalSource(
        journalctl=FAKE, start="beginning", restart_backoff=(0.01, 0.05), poll_interval=0.01
    )
    with source:
        got = poll_until(source, 7)
        notices = source.notices()
    assert [r.cursor for r in got] == [f"s=abc;i={n}" for n in range(1, 8)]
    assert source.restarts >= 2
    assert any("exited with status 1" in n and "restarting" in n for n in notices)
    resumed = [a for a in invocations(journal) if any(x.startswith("--after-") for x in a)]
    assert "--after-cursor=s=abc;i=3" in resumed[0]


def test_boundary_duplicates_from_old_journalctl_are_dropped(journal: Path) -> None:
    add(journal, entry(1), entry(1), entry(2))  # journalctl before PR #30336 could repeat
    with JournalSource(journalctl=FAKE, follow=False, start="beginning") as source:
        assert [r.cursor for r in source.records()] == ["s=abc;i=1", "s=abc;i=2"]


def test_missing_journalctl_is_a_clear_error(tmp_path: Path) -> None:
    source = JournalSource(journalctl=str(tmp_path / "no-such-journalctl"))
    with pytest.raises(SourceUnavailable, match="command not found"):
        source.poll()


def test_journalctl_not_executable_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "journalctl"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    with pytest.raises(SourceUnavailable, match="permission denied"):
        JournalSource(journalctl=str(script)).poll()


def test_no_permission_to_read_the_journal_is_reported(
    journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_JOURNAL_DENIED", "1")
    with JournalSource(journalctl=FAKE, follow=False) as source:
        assert list(source.records()) == []
        assert any("systemd-journal" in n for n in source.notices())


def test_bad_cursor_in_one_shot_mode_raises_with_journalctl_message(journal: Path) -> None:
    add(journal, entry(1))
    source = JournalSource(journalctl=FAKE, follow=False, cursor="s=gone;i=99")
    with pytest.raises(SourceUnavailable, match="Failed to seek to cursor"):
        list(source.records())


def test_non_utf8_and_garbage_output(journal: Path) -> None:
    add(journal, entry(1, message=[0x68, 0x69, 0xFF, 0x00]))
    with journal.open("a") as out:
        out.write("this is not json\n")
        out.write(json.dumps({"MESSAGE": "no cursor", "SYSLOG_FACILITY": "2"}) + "\n")
    add(journal, entry(2))
    with JournalSource(journalctl=FAKE, follow=False, start="beginning") as source:
        records = list(source.records())
        notices = source.notices()
    assert [r.data for r in records] == [b"hi\xff\x00", b"connect from client2[192.0.2.2]"]
    assert len(notices) == 2


def test_syslog_line_rendering(journal: Path) -> None:
    record = JournalRecord(entry(5), "s=abc;i=5")
    assert record.as_syslog_line() == (
        b"2025-11-22T00:00:05.000000+00:00 mx1 postfix/smtpd[1005]: connect from client5[192.0.2.5]"
    )


def test_blocking_follow_stops_on_the_event(journal: Path) -> None:
    add(journal, entry(1))
    stop = threading.Event()
    with JournalSource(journalctl=FAKE, start="beginning", poll_interval=0.01) as source:
        for record in source.follow(stop):
            assert record.cursor == "s=abc;i=1"
            stop.set()
    assert stop.is_set()
