"""Reading logs once (``explain``): directory order, compression, stdin, bad input."""

from __future__ import annotations

import gzip
import io
import random
import sys
from pathlib import Path

import pytest

from pfwatch.errors import SourceUnavailable
from pfwatch.sources.replay import ReplayLine, ReplaySource, replay_order


def read_all(source: ReplaySource) -> list[ReplayLine]:
    out: list[ReplayLine] = []
    while not source.done:
        out += source.poll()
    return out


def test_directory_order_per_log_oldest_first(tmp_path: Path) -> None:
    for name in [
        "maillog", "maillog.20261122-004400.gz", "maillog.20261121-235959.gz",
        "maillog.20261122-010000", "mail.log", "mail.log.1", "mail.log.2.gz", "notes.txt",
    ]:  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in replay_order(tmp_path)] == [
        "mail.log.2.gz", "mail.log.1", "mail.log",
        "maillog.20261121-235959.gz", "maillog.20261122-004400.gz", "maillog.20261122-010000",
        "maillog",
        "notes.txt",
    ]  # fmt: skip


def test_lines_numbers_and_compressed_segments(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "mail.log.1.gz", "wb") as out:
        out.write(b"old 1\nold 2\n")
    (tmp_path / "mail.log").write_bytes(b"new 1\nnew 2 without newline")
    lines = read_all(ReplaySource([str(tmp_path)]))
    assert [(line.data, Path(line.source).name, line.line_no) for line in lines] == [
        (b"old 1", "mail.log.1.gz", 1),
        (b"old 2", "mail.log.1.gz", 2),
        (b"new 1", "mail.log", 1),
        (b"new 2 without newline", "mail.log", 2),
    ]
    assert lines[2].checkpoint.endswith("mail.log:1")


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a\nb\n")))
    lines = read_all(ReplaySource(["-"]))
    assert [(line.data, line.source) for line in lines] == [(b"a", "<stdin>"), (b"b", "<stdin>")]


def test_long_lines_garbage_and_a_broken_file_do_not_stop_the_replay(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"x" * 5000 + b"\n\x00\xff\xfe\nvalid\n")
    noise = random.Random(1)
    packed = gzip.compress(b"".join(b"%x\n" % noise.getrandbits(64) for _ in range(2000)))
    (tmp_path / "b.log.gz").write_bytes(packed[: len(packed) // 2])  # breaks off mid-stream
    (tmp_path / "c.log").write_bytes(b"after\n")
    source = ReplaySource(
        [str(tmp_path / n) for n in ("a.log", "b.log.gz", "c.log")], max_line_bytes=100
    )
    lines = read_all(source)
    assert [(line.data, line.truncated) for line in lines if "b.log" not in line.source] == [
        (b"x" * 100, True),
        (b"\x00\xff\xfe", False),
        (b"valid", False),
        (b"after", False),
    ]
    (notice,) = source.notices()
    assert "b.log.gz" in notice


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="No such file"):
        read_all(ReplaySource([str(tmp_path / "nope.log")]))
