"""Rotated segments and positions: naming schemes, order, compression, content matching."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pfwatch.errors import StateError
from pfwatch.sources.position import HEAD_BYTES, MARKER_BYTES, FilePosition, position_after
from pfwatch.sources.rotation import SegmentFile, locate, rotated_segments


def touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(name.encode() + b"\n")


def names(live: Path) -> list[str]:
    return [segment.path.name for segment in rotated_segments(live)]


def test_numbered_segments_oldest_first(tmp_path: Path) -> None:
    touch(tmp_path, "mail.log", "mail.log.1", "mail.log.2.gz", "mail.log.10.gz", "mail.log.3")
    touch(tmp_path, "mail.log.offset", "mail.logger", "other.log.1", "mail.log.1.swp")
    assert names(tmp_path / "mail.log") == [
        "mail.log.10.gz", "mail.log.3", "mail.log.2.gz", "mail.log.1",
    ]  # fmt: skip


def test_postfix_logrotate_and_dateext_segments(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "maillog.20261122-004400.gz",
        "maillog.20261121-235959.gz",
        "maillog.20261122-010000",  # renamed, not compressed yet
    )
    assert names(tmp_path / "maillog") == [
        "maillog.20261121-235959.gz", "maillog.20261122-004400.gz", "maillog.20261122-010000",
    ]  # fmt: skip
    touch(tmp_path, "mail.log-20261120", "mail.log-20261121.gz")
    assert names(tmp_path / "mail.log") == ["mail.log-20261120", "mail.log-20261121.gz"]


def test_a_file_being_compressed_counts_once(tmp_path: Path) -> None:
    touch(tmp_path, "mail.log.1", "mail.log.1.gz", "mail.log.2.gz")
    assert names(tmp_path / "mail.log") == ["mail.log.2.gz", "mail.log.1"]


def test_mixed_schemes_fall_back_to_modification_time(tmp_path: Path) -> None:
    touch(tmp_path, "mail.log.1", "mail.log-20260101")
    os.utime(tmp_path / "mail.log.1", ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    os.utime(tmp_path / "mail.log-20260101", ns=(1_000_000_000_000_000_000,) * 2)
    assert names(tmp_path / "mail.log") == ["mail.log-20260101", "mail.log.1"]


@pytest.mark.parametrize(
    ("suffix", "opener"), [("gz", gzip.open), ("bz2", bz2.open), ("xz", lzma.open)]
)
def test_compressed_segments_resume_at_an_uncompressed_offset(
    tmp_path: Path, suffix: str, opener: object
) -> None:
    content = b"".join(b"line %d of the old file\n" % n for n in range(200))
    offset = content.index(b"line 150")
    position = position_after(
        path=str(tmp_path / "mail.log"), file="mail.log", dev=0, ino=0, offset=offset,
        head=content, marker=content[:offset],
    )  # fmt: skip
    with opener(tmp_path / f"mail.log.1.{suffix}", "wb") as out:  # type: ignore[operator]
        out.write(content)
    (tmp_path / "mail.log").write_bytes(b"new\n")
    plan = locate(tmp_path / "mail.log", position)
    try:
        assert plan.found and len(plan.queue) == 1
        assert plan.queue[0].read(1 << 20) == content[offset:]
        assert plan.live is not None and plan.live.offset == 0
    finally:
        plan.close()


def test_locate_prefers_the_same_inode_but_checks_content(tmp_path: Path) -> None:
    live = tmp_path / "mail.log"
    live.write_bytes(b"first line\nsecond line\n")
    segment = SegmentFile(live)
    position = position_after(
        path=str(live), file=str(live), dev=segment.dev, ino=segment.ino, offset=11,
        head=b"first line\n", marker=b"first line\n",
    )  # fmt: skip
    segment.close()
    plan = locate(live, position)
    assert plan.found and plan.queue == [] and plan.live is not None and plan.live.offset == 11
    plan.close()
    live.write_bytes(b"other line\nsecond line\n")  # same inode, other content
    plan = locate(live, position)
    assert not plan.found and plan.live is not None and plan.live.offset == 0
    plan.close()


@given(st.binary(min_size=1, max_size=3000), st.data())
def test_position_round_trip_and_limits(content: bytes, data: st.DataObject) -> None:
    offset = data.draw(st.integers(min_value=0, max_value=len(content)))
    position = position_after(
        path="/var/log/mail.log", file="/var/log/mail.log.1", dev=1, ino=2, offset=offset,
        head=content, marker=content[:offset],
    )  # fmt: skip
    assert FilePosition.from_json(position.to_json()) == position
    assert position.head_len == min(offset, HEAD_BYTES)
    assert position.marker_len == min(offset, MARKER_BYTES)
    assert position.matches(
        content[: position.head_len], content[offset - position.marker_len : offset], len(content)
    )


def test_inconsistent_stored_positions_are_state_errors() -> None:
    good = position_after(
        path="p", file="p", dev=1, ino=2, offset=10, head=b"0123456789", marker=b"0123456789"
    ).to_dict()
    for broken in (
        {**good, "offset": 5},  # head longer than the offset
        {**good, "head": [10]},
        {**good, "dev": "x"},
        {**good, "v": 2},
    ):
        with pytest.raises(StateError):
            FilePosition.from_dict(broken)
