"""Reading logs once (``explain``): directory order, compression, stdin, bad input."""

from __future__ import annotations

import gzip
import io
import os
import random
import sys
from pathlib import Path
from typing import IO

import pytest

from pfwatch.errors import SourceUnavailable
from pfwatch.sources.replay import ReplayLine, ReplaySource, replay_order


def read_all(source: ReplaySource) -> list[ReplayLine]:
    out: list[ReplayLine] = []
    while not source.done:
        for block in source.poll():
            out += block.lines(source.max_line_bytes)
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
    assert notice.startswith(f"{tmp_path / 'b.log.gz'}:")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="No such file"):
        read_all(ReplaySource([str(tmp_path / "nope.log")]))


def test_a_block_is_one_record_and_names_its_last_line(tmp_path: Path) -> None:
    (tmp_path / "mail.log").write_bytes(b"a\nb\nc\n")
    source = ReplaySource([str(tmp_path / "mail.log")])
    (block,) = source.poll()
    assert (block.data, block.line_no, block.whole) == (b"a\nb\nc\n", 0, True)
    assert block.checkpoint == f"{tmp_path / 'mail.log'}:3"
    assert source.poll() == [] and source.done


def test_not_before_skips_old_files_and_seeks_in_plain_ones(tmp_path: Path) -> None:
    old, live = tmp_path / "mail.log.1", tmp_path / "mail.log"
    old.write_bytes(b"old\n")
    live.write_bytes(b"x\ny\nz\n")
    os.utime(old, (1000.0, 1000.0))
    opened: list[str] = []

    def seek(handle: IO[bytes], moment: float) -> int:
        assert moment == 2000.0
        handle.seek(2)  # after "x\n"
        return 1

    source = ReplaySource([str(tmp_path)], not_before=2000.0, seek=seek, on_open=opened.append)
    lines = read_all(source)
    assert [(line.data, line.line_no) for line in lines] == [(b"y", 2), (b"z", 3)]
    assert opened == [str(live)]
