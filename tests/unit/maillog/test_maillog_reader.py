"""LogClassifier, LineStats and iter_log_events: statistics, bad input, files, rotation."""

from __future__ import annotations

import gzip
import io
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.errors import SourceUnavailable
from pfwatch.events import LogEvent
from pfwatch.maillog.reader import (
    MAX_LINE_BYTES,
    SHAPES_LIMIT,
    LogClassifier,
    iter_log_events,
    make_log_event,
)
from pfwatch.sources import logfiles as files
from pfwatch.sources.replay import expand

REF = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
CONNECT = b"Jun  1 00:00:01 mx postfix/smtpd[10]: connect from a[192.0.2.1]\n"
ACTIVITY = b"Jun  1 00:00:02 mx postfix/qmgr[11]: 3A1973E542: removed\n"
OTHER = b"Jun  1 00:00:03 mx dovecot[12]: imap-login: Login\n"
ODD = b"Jun  1 00:00:04 mx postfix/smtpd[10]: Useless Payload\n"


def classifier(**kwargs: object) -> LogClassifier:
    return LogClassifier(reference_time=REF, tz=UTC, **kwargs)  # type: ignore[arg-type]


def test_counts_and_invariant() -> None:
    c = classifier(keep_unrecognized=1)
    events = [c.feed(line) for line in (CONNECT, ACTIVITY, OTHER, ODD, ODD, b"garbage\n")]
    assert [e.kind if e else None for e in events] == [
        "session_connect",
        "message_activity",
        None,
        "unrecognized",
        "unrecognized",
        None,
    ]
    stats = c.stats
    assert (stats.lines_total, stats.lines_postfix, stats.lines_malformed) == (6, 4, 1)
    assert (stats.lines_recognized, stats.lines_unrecognized) == (2, 2)
    assert stats.per_daemon == {"smtpd": 3, "qmgr": 1}
    assert stats.processes_per_daemon == {"smtpd": 1, "qmgr": 1}
    assert stats.unrecognized_shapes == {"smtpd: Useless Payload": 2}
    assert stats.unrecognized_samples == [ODD.decode().rstrip("\n")]
    data = stats.to_json()
    assert data["lines_recognized"] + data["lines_unrecognized"] == data["lines_postfix"]
    assert data["unrecognized_shapes"] == [{"shape": "smtpd: Useless Payload", "count": 2}]


def test_event_fields() -> None:
    event = classifier().feed(CONNECT.decode(), "mail.log", 7, "pos")
    assert event == LogEvent(
        REF + 1,
        "session_connect",
        "postfix/smtpd",
        "postfix",
        "",
        "smtpd",
        10,
        {"client": "a[192.0.2.1]"},
        "mail.log",
        7,
        "pos",
    )


def test_no_break_spaces_pasted_from_a_web_page_are_read_as_spaces(tmp_path: Path) -> None:
    pasted = CONNECT.replace(b"Jun  1", "Jun\u00a0 1".encode())
    assert classifier().feed(pasted) == classifier().feed(CONNECT)
    log = tmp_path / "excerpt.log"
    log.write_bytes(pasted + ACTIVITY.replace(b"Jun  1", "Jun\u00a0 1".encode()))
    c = classifier()
    kinds = [e.kind for e in iter_log_events([str(log)], c)]
    assert kinds == ["session_connect", "message_activity"]
    assert c.stats.lines_malformed == 0


def test_fast_constructor_builds_real_log_events() -> None:
    args = (1.5, "k", "p/d", "p", "", "d", 3, {"a": "b"}, "s", 4, "x")
    made = make_log_event(*args)
    assert type(made) is LogEvent
    assert made == LogEvent(*args)  # type: ignore[arg-type]
    assert hash(made.at) == hash(1.5)
    with pytest.raises(AttributeError):
        made.kind = "other"  # type: ignore[misc]


BAD_INPUTS = [
    b"\x00\x01\x02\xff\xfe binary garbage \x80\n",
    b"Jun  1 00:00:05 mx postfix/smtpd[10]: connect from \xff\xfe[192.0.2.9]\n",
    b"\x00" * 4096 + b"Jun  1 00:00:06 mx postfix/qmgr[11]: 3A1973E542: removed\n",
    b"Jun  1 00:00:07 mx postfix/smtpd[10]: connect from " + b"x" * (2 * MAX_LINE_BYTES) + b"\n",
    b"Jun  1 00:00:08 mx postfix/sm",
    b"May 30 00:00:00 mx postfix/smtpd[10]: connect from back[192.0.2.3]\n",
    b"\n",
    b"\r\n",
]


@pytest.mark.parametrize("bad", BAD_INPUTS)
def test_bad_input_is_counted_and_the_next_line_survives(bad: bytes) -> None:
    c = classifier()
    c.feed(bad)
    event = c.feed(CONNECT)
    assert event is not None and event.kind == "session_connect"
    stats = c.stats
    assert stats.lines_total == 2
    assert stats.lines_recognized + stats.lines_unrecognized == stats.lines_postfix


def test_bad_input_counters() -> None:
    c = classifier()
    for bad in BAD_INPUTS:
        c.feed(bad)
    stats = c.stats
    assert stats.lines_undecodable == 2
    assert stats.lines_truncated == 1
    assert stats.lines_time_backwards == 1
    assert stats.lines_malformed == 4  # garbage, the cut-off line and the two empty ones
    nul = classifier().feed(BAD_INPUTS[2])
    assert nul is not None and nul.kind == "message_activity"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_random_bytes_never_crash(lines: list[bytes]) -> None:
    c = classifier()
    for line in lines:
        c.feed(line)
        c.feed(line.decode("latin-1"))
    stats = c.stats
    assert stats.lines_total == 2 * len(lines)
    assert stats.lines_recognized + stats.lines_unrecognized == stats.lines_postfix
    assert stats.lines_postfix + stats.lines_malformed <= stats.lines_total


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["smtpd", "qmgr", "master", "postscreen", "cleanup"]),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
        max_size=80,
    ),
)
def test_fast_path_equals_general_path(daemon: str, message: str) -> None:
    classic = f"Jun  1 00:00:09 mx postfix/{daemon}[77]: {message}"
    general = f"2025 Jun  1 00:00:09 mx postfix/{daemon}[77]: {message}"  # not the fast path
    fast_event = classifier().feed(classic)
    slow_event = classifier().feed(general)
    assert fast_event == slow_event


def test_coalesced_activity_is_counted_not_emitted() -> None:
    c = classifier(coalesce_activity=True)
    first = c.feed(ACTIVITY)
    again = c.feed(ACTIVITY.replace(b"3A1973E542: removed", b"3A1973E542: from=<>"))
    later = c.feed(ACTIVITY.replace(b"00:00:02", b"00:00:03"))
    assert first is not None and again is None and later is not None
    assert c.stats.lines_recognized == 3


def test_bounded_memory() -> None:
    c = classifier(keep_unrecognized=5)
    for number in range(3 * SHAPES_LIMIT):
        word = "".join(chr(97 + int(d)) for d in str(number))
        c.feed(f"Jun  1 00:00:10 mx postfix/smtpd[10]: odd {word} words")
    stats = c.stats
    assert stats.lines_unrecognized == 3 * SHAPES_LIMIT
    assert len(stats.unrecognized_shapes) <= 2 * SHAPES_LIMIT
    assert len(stats.unrecognized_samples) == 5


def test_journal_records_use_their_cursor() -> None:
    c = classifier()
    record = {
        "MESSAGE": "master exit time has arrived",
        "SYSLOG_IDENTIFIER": "postfix/master",
        "_PID": "1",
        "__REALTIME_TIMESTAMP": "1700000000000000",
        "__CURSOR": "s=1;i=2",
    }
    event = c.feed_journal(record)
    assert event is not None
    assert (event.kind, event.position, event.source) == ("master_exit_time", "s=1;i=2", "journal")
    assert c.feed_journal({"MESSAGE": "no identifier"}) is None
    assert c.stats.lines_malformed == 1


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (
            ["mail.log", "mail.log.1", "mail.log.10.gz", "mail.log.2.gz", "mail.log.3.gz"],
            ["mail.log.10.gz", "mail.log.3.gz", "mail.log.2.gz", "mail.log.1", "mail.log"],
        ),
        (
            ["maillog", "maillog-20240102.gz", "maillog-20240101"],
            ["maillog-20240101", "maillog-20240102.gz", "maillog"],
        ),
        (  # postfix logrotate
            ["maillog", "maillog.20261122-004400.gz", "maillog.20261121-235959"],
            ["maillog.20261121-235959", "maillog.20261122-004400.gz", "maillog"],
        ),
    ],
)
def test_a_directory_is_read_oldest_segment_first(
    tmp_path: Path, names: list[str], expected: list[str]
) -> None:
    for name in names:
        if name.endswith(".gz"):
            with gzip.open(tmp_path / name, "wb") as handle:
                handle.write(CONNECT)
        else:
            (tmp_path / name).write_bytes(CONNECT)
    assert [Path(p).name for p in expand([str(tmp_path)])] == expected


def _write_rotated(directory: Path) -> None:
    lines = [
        f"Jun  1 00:00:{s:02d} mx postfix/smtpd[{s}]: connect from a[192.0.2.1]\n" for s in range(4)
    ]
    with gzip.open(directory / "mail.log.3.gz", "wt") as handle:
        handle.write(lines[0])
    with gzip.open(directory / "mail.log.2.gz", "wt") as handle:
        handle.write(lines[1])
    (directory / "mail.log.1").write_text(lines[2])
    (directory / "mail.log").write_text(lines[3])
    (directory / ".hidden").write_text("not read\n")


def test_directory_of_rotated_files(tmp_path: Path) -> None:
    _write_rotated(tmp_path)
    c = LogClassifier(tz=UTC)
    events = list(iter_log_events([str(tmp_path)], c))
    assert [e.pid for e in events] == [0, 1, 2, 3]
    assert [Path(e.source).name for e in events] == [
        "mail.log.3.gz",
        "mail.log.2.gz",
        "mail.log.1",
        "mail.log",
    ]
    assert all(e.line_no == 1 for e in events)
    assert c.stats.lines_time_backwards == 0


def test_reference_time_is_the_file_mtime(tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    log.write_text("Dec 31 23:59:59 mx postfix/qmgr[1]: 3A1973E542: removed\n")
    stamp = datetime(2020, 1, 3, tzinfo=UTC).timestamp()
    os.utime(log, (stamp, stamp))
    (event,) = iter_log_events([str(log)], LogClassifier(tz=UTC))
    assert datetime.fromtimestamp(event.at, UTC).year == 2019


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(CONNECT + OTHER + ACTIVITY))
    monkeypatch.setattr(sys, "stdin", fake)
    events = list(iter_log_events(["-"], classifier()))
    assert [(e.kind, e.source, e.line_no) for e in events] == [
        ("session_connect", "<stdin>", 1),
        ("message_activity", "<stdin>", 3),
    ]


def test_huge_line_without_newline_in_a_file(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    log.write_bytes(CONNECT + b"y" * (5 * MAX_LINE_BYTES) + b"\n" + ACTIVITY + ODD[:-1])
    c = classifier()
    events = list(iter_log_events([str(log)], c))
    assert [(e.kind, e.line_no) for e in events] == [
        ("session_connect", 1),
        ("message_activity", 3),
        ("unrecognized", 4),
    ]
    assert c.stats.lines_truncated == 1 and c.stats.lines_total == 4


def test_corrupt_gzip_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    broken = tmp_path / "a.log.gz"
    data = gzip.compress(CONNECT * 50)
    broken.write_bytes(data[: len(data) // 2])
    good = tmp_path / "b.log"
    good.write_bytes(ACTIVITY)
    c = classifier()
    events = list(iter_log_events([str(broken), str(good)], c))
    assert events[-1].kind == "message_activity"
    assert len(c.stats.read_errors) == 1 and "a.log.gz" in c.stats.read_errors[0]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable) as caught:
        list(iter_log_events([str(tmp_path / "nope.log")], classifier()))
    assert caught.value.source.endswith("nope.log")


def test_coalescing_on_the_general_path() -> None:
    c = classifier(coalesce_activity=True)
    iso = "2025-06-01T00:00:02.{} mx postfix/qmgr[11]: 3A1973E542: removed"
    assert c.feed(iso.format("100000+00:00")) is not None
    assert c.feed(iso.format("100000+00:00")) is None  # same time, same message
    assert c.feed(iso.format("900000+00:00")) is not None  # a later time is news
    assert c.feed(iso.format("900000+00:00").replace("3A1973E542", "4B2084F653")) is not None
    assert (c.stats.lines_recognized, c.stats.per_kind) == (4, {"message_activity": 4})


def test_coalescing_keeps_every_queue_id_change_and_session_boundary() -> None:
    """Only a repeat of the process' previous line (activity, same time, same id) is dropped."""
    c = classifier(coalesce_activity=True)
    other_id = ACTIVITY.replace(b"3A1973E542", b"4B2084F653")
    fed = [c.feed(line) for line in (ACTIVITY, other_id, ACTIVITY, ACTIVITY)]
    assert [event is not None for event in fed] == [True, True, True, False]
    assert c.feed(b"Jun  1 00:00:02 mx postfix/qmgr[11]: warning: odd") is not None
    assert c.feed(ACTIVITY) is not None  # a non-activity line in between: news again
    assert c.stats.lines_recognized == 6


SAMPLE_DIR = Path(__file__).resolve().parents[3] / "grammars" / "samples" / "maillog"


def _mixed_lines() -> list[bytes]:
    lines = [
        line.encode()
        for path in sorted(SAMPLE_DIR.glob("*.log"))
        for line in path.read_text().splitlines()
        if not line.startswith(("#", "{"))
    ]
    lines += [CONNECT.rstrip(), ACTIVITY.rstrip(), ACTIVITY.rstrip(), ODD.rstrip()]
    lines += [b"", b"garbage", OTHER.rstrip(b"\n"), b"Jun  1 00:00:11 mx postfix/bounce: "]
    return lines


@pytest.mark.parametrize("coalesce", [False, True])
@pytest.mark.parametrize(
    "spoiler", [b"", b"\x00 nul", b"crlf\r", b"\xff\xfe undecodable", b"y" * (MAX_LINE_BYTES + 9)]
)
def test_blocks_and_lines_agree(tmp_path: Path, coalesce: bool, spoiler: bytes) -> None:
    """iter_log_events (blocks, inlined fast path) == feeding the same lines one by one."""
    lines = _mixed_lines()
    lines.insert(len(lines) // 2, spoiler)
    log = tmp_path / "mixed.log"
    log.write_bytes(b"\n".join(lines) + b"\n")
    by_block = classifier(coalesce_activity=coalesce, keep_unrecognized=50)
    block_events = list(iter_log_events([str(log)], by_block))
    by_line = classifier(coalesce_activity=coalesce, keep_unrecognized=50)
    line_events = [
        event
        for number, line in enumerate(lines, 1)
        if (event := by_line.feed(line, str(log), number)) is not None
    ]
    assert block_events == line_events
    assert by_block.stats.to_json() == by_line.stats.to_json()
    assert len(block_events) > 100


def test_read_blocks_cuts_lines_longer_than_a_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "BLOCK_BYTES", 64)
    data = CONNECT + b"z" * 1000 + b"\n" + ACTIVITY + b"tail without newline"
    blocks = list(files.read_blocks(io.BytesIO(data), max_line=100))
    whole = b"".join(block for is_whole, block in blocks if is_whole)
    cut = [block for is_whole, block in blocks if not is_whole]
    assert whole == CONNECT + ACTIVITY + b"tail without newline\n"
    assert cut == [b"z" * 101]
    assert all(block.endswith(b"\n") for is_whole, block in blocks if is_whole)
