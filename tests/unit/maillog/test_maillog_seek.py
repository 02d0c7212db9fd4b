"""Reading a maillog from a moment on: bisection on timestamps, exact line numbers."""

from __future__ import annotations

import gzip
import io
import os
import threading
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.maillog.reader import LogClassifier, iter_log_events
from pfwatch.maillog.seek import OUT_OF_ORDER_SLACK, PROBE_BYTES, lines_before, start_offset

T0 = time.mktime((2026, 3, 2, 8, 0, 0, 0, 0, -1))


def stamp(at: float) -> str:
    return time.strftime("%b %e %H:%M:%S", time.localtime(at))


def write_log(path: Path, seconds: list[int], garbage_every: int = 0) -> list[str]:
    lines = []
    for number, second in enumerate(seconds):
        if garbage_every and number % garbage_every == 0:
            lines.append("\x00\x00 not a log line at all")
        pid = 1000 + number
        lines.append(f"{stamp(T0 + second)} mx postfix/smtpd[{pid}]: connect from a[192.0.2.1]")
    path.write_text("\n".join(lines) + "\n")
    return lines


def classifier() -> LogClassifier:
    return LogClassifier(reference_time=T0 + 86_400)


def read(path: Path, not_before: float | None) -> list[tuple[int, float]]:
    events = iter_log_events([str(path)], classifier(), not_before=not_before)
    return [(e.line_no, e.at) for e in events]


def test_a_long_log_is_read_from_shortly_before_the_moment(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    write_log(log, list(range(0, 40_000, 2)), garbage_every=97)
    whole = read(log, None)
    cutoff = T0 + 30_000
    part = read(log, cutoff)
    assert part == whole[len(whole) - len(part) :]  # a tail, with the same line numbers
    # it starts at most one probe (64 KB, under 1000 of these lines) before the slack
    assert sum(at < cutoff - OUT_OF_ORDER_SLACK for _, at in part) < PROBE_BYTES // 65
    assert [row for row in whole if row[1] >= cutoff] == [row for row in part if row[1] >= cutoff]
    assert len(part) < len(whole) / 3


def test_moments_outside_the_log(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    write_log(log, list(range(0, 20_000, 2)))
    whole = read(log, None)
    assert read(log, T0 - 3600) == whole
    late = read(log, T0 + 10**6)
    assert len(late) < 2000 and late == whole[len(whole) - len(late) :]


def test_gzip_and_small_files_are_read_whole(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    lines = write_log(log, list(range(0, 20_000, 2)))
    packed = tmp_path / "maillog.1.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    assert len(read(packed, T0 + 19_000)) == len(lines)
    small = tmp_path / "small"
    write_log(small, [0, 1, 2, 3])
    assert len(read(small, T0 + 2)) == 4


def test_lines_before_counts_exactly() -> None:
    data = b"".join(b"x" * (n % 50) + b"\n" for n in range(30_000))
    handle = io.BytesIO(data)
    for offset in (0, 1, 17, len(data) // 3, len(data)):
        assert lines_before(handle, offset) == data[:offset].count(b"\n")
        assert handle.tell() == offset


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=-3, max_value=40), min_size=1, max_size=3000),
    cut=st.floats(min_value=0.0, max_value=1.0),
)
def test_every_line_from_the_moment_on_is_kept(steps: list[int], cut: float) -> None:
    """Time mostly goes forward, sometimes back a little: nothing at or after the moment,
    minus the slack, is ever skipped, and the offset is a line start."""
    seconds, now = [], 0
    for step in steps:
        now = max(0, now + step)
        seconds.append(now)
    text = "".join(
        f"{stamp(T0 + s)} h postfix/qmgr[1]: {n:08X}: removed\n" for n, s in enumerate(seconds)
    )
    data = text.encode()
    moment = T0 + cut * max(seconds)
    c = classifier()
    offset = start_offset(io.BytesIO(data), len(data), moment, c.line_time)
    assert offset == 0 or data[offset - 1 : offset] == b"\n"
    skipped = data[:offset].decode().splitlines()
    assert all((c.line_time(line.encode()) or 0) < moment for line in skipped)


def test_rotated_segments_written_before_the_moment_are_skipped(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = logs / "mail.log.2.gz"
    old.write_bytes(
        gzip.compress(b"".join(f"{line}\n".encode() for line in write_log(tmp_path / "x", [0, 1])))
    )
    recent = logs / "mail.log"
    write_log(recent, [5000, 5001])
    os.utime(old, (T0 + 1, T0 + 1))
    os.utime(recent, (T0 + 5001, T0 + 5001))
    everything = [(e.source, e.line_no) for e in iter_log_events([str(logs)], classifier())]
    assert len(everything) == 4
    since = [
        (e.source, e.line_no)
        for e in iter_log_events([str(logs)], classifier(), not_before=T0 + 4000)
    ]
    assert since == [(str(recent), 1), (str(recent), 2)]


def test_a_pipe_is_read_whole(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    write_log(log, list(range(0, 20_000, 2)))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    os.utime(fifo, (T0, T0))  # an old FIFO is not an old rotated segment
    writer = threading.Thread(target=lambda: fifo.write_bytes(log.read_bytes()))
    writer.start()
    got = read(fifo, T0 + 19_000)
    writer.join()
    assert len(got) == 10_000
