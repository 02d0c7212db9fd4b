"""The follower against every way a log file changes under it (issue 3, item 5).

Each test writes numbered lines with :class:`RotatingLog`, rotates the file one way, and
checks the exact sequence delivered: nothing lost, nothing twice, in order.
"""

from __future__ import annotations

import os
import random
import tracemalloc
from pathlib import Path

import pytest
from rotating_log import RotatingLog, gzip_file

from pfwatch.errors import StateError
from pfwatch.sources.follow import Follower, Line
from pfwatch.sources.position import FilePosition


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(follower: Follower) -> list[Line]:
    out: list[Line] = []
    while True:
        lines = follower.poll()
        out += lines
        if not lines and not follower.behind:
            return out


def texts(lines: list[Line]) -> list[bytes]:
    return [line.data for line in lines]


def make(path: Path, position: FilePosition | str | None = None, **kw: object) -> Follower:
    kw.setdefault("start", "beginning")
    kw.setdefault("rotate_wait", 0.0)
    return Follower(path, position, **kw)  # type: ignore[arg-type]


@pytest.fixture
def log(tmp_path: Path) -> RotatingLog:
    return RotatingLog(tmp_path / "mail.log", random.Random(7))


def test_file_that_does_not_exist_yet(log: RotatingLog) -> None:
    with make(log.path, start="end") as follower:
        assert follower.poll() == []
        written = log.append(3)
        assert texts(drain(follower)) == written  # a file created later is read from 0


def test_file_created_and_rotated_before_the_first_poll(log: RotatingLog) -> None:
    old = log.path.with_name("mail.log.1")
    old.write_bytes(b"from before the follower started\n")
    with make(log.path, start="end") as follower:
        first = log.append(3)  # creates the file
        log.rotate_rename()  # .1 becomes .2: the file there before is not read
        second = log.append(2)
        assert texts(drain(follower)) == [*first, *second]


def test_start_at_end_skips_old_lines_but_not_an_incomplete_one(log: RotatingLog) -> None:
    log.append(5)
    log.append_partial(b"half")
    with make(log.path, start="end") as follower:
        assert follower.poll() == []
        log.append_partial(b" done\n")
        new = log.append(1)
        assert texts(drain(follower)) == [b"half done", *new]


def test_rename_rotation_drains_the_old_file_first(log: RotatingLog) -> None:
    with make(log.path) as follower:
        first = log.append(3)
        assert texts(drain(follower)) == first
        before = log.append(2)
        log.rotate_rename()
        rotated = log.path.with_name("mail.log.1")
        with rotated.open("ab") as late:  # the writer has not reopened its file yet
            late.write(b"late line\n")
        after = log.append(2)
        got = drain(follower)
        assert texts(got) == [*before, b"late line", *after]
        assert all(not line.unterminated for line in got)


def test_rotate_wait_keeps_reading_the_old_file_until_it_is_quiet(log: RotatingLog) -> None:
    clock = ManualClock()
    with make(log.path, rotate_wait=1.0, clock=clock) as follower:
        log.append(1)
        drain(follower)
        log.rotate_rename()
        new = log.append(1)
        assert drain(follower) == []  # rotation seen, waiting for stragglers
        clock.now += 0.6
        with log.path.with_name("mail.log.1").open("ab") as late:
            late.write(b"straggler\n")
        assert texts(drain(follower)) == [b"straggler"]
        clock.now += 0.6
        assert drain(follower) == []  # the old file grew 0.6 s ago: still waiting
        clock.now += 0.5
        assert texts(drain(follower)) == new


def test_several_rotations_between_two_polls(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(2)
        drain(follower)
        expected = []
        for _ in range(4):
            expected += log.append(3)
            log.rotate_rename(compress=True)
        expected += log.append(1)
        assert texts(drain(follower)) == expected


def test_copytruncate_regrown_past_the_old_offset(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(3)
        drain(follower)
        unread = log.append(2)
        log.copytruncate()
        regrown = log.append(20)  # far longer than before: size alone cannot tell
        assert texts(drain(follower)) == [*unread, *regrown]


def test_copytruncate_smaller_than_the_offset(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(10)
        drain(follower)
        unread = log.append(1)
        log.copytruncate()
        assert texts(drain(follower)) == unread
        assert texts(drain(follower)) == []
        assert texts(drain(follower)) == []
        later = log.append(2)
        assert texts(drain(follower)) == later


def test_truncation_without_a_copy_restarts_at_zero(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(5)
        drain(follower)
        log.path.write_bytes(b"")
        fresh = log.append(2)
        assert texts(drain(follower)) == fresh
        assert any("truncated" in notice for notice in follower.notices())


def test_delete_and_recreate(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(2)
        drain(follower)
        log.delete_recreate()
        assert drain(follower) == []
        fresh = log.append(3)
        assert texts(drain(follower)) == fresh


def test_file_removed_and_recreated_later_keeps_reading_the_old_descriptor(
    log: RotatingLog,
) -> None:
    with make(log.path) as follower:
        log.append(1)
        drain(follower)
        with log.path.open("ab") as writer:
            log.path.unlink()
            writer.write(b"written after unlink\n")
            writer.flush()
            assert texts(drain(follower)) == [b"written after unlink"]
        fresh = log.append(1)
        assert texts(drain(follower)) == fresh


def test_catch_up_through_dot_1_and_gz_after_a_restart(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(4)
        committed = drain(follower)[-1].checkpoint
    missed = log.append(3)
    log.rotate_rename(compress=True)
    missed += log.append(3)
    log.rotate_rename(compress=True)  # the first file is now mail.log.2.gz
    missed += log.append(3)
    assert log.path.with_name("mail.log.2.gz").exists()
    with make(log.path, committed) as follower:
        got = drain(follower)
    assert texts(got) == missed
    assert [Path(line.file).name for line in got] == ["mail.log.2.gz"] * 3 + ["mail.log.1"] * 3 + [
        "mail.log"
    ] * 3


def test_catch_up_through_postfix_logrotate_segments(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(2)
        committed = drain(follower)[-1].checkpoint
    missed = log.append(2)
    log.postfix_logrotate()
    missed += log.append(2)
    log.postfix_logrotate()
    log.compress_pending()
    missed += log.append(2)
    names = sorted(p.name for p in log.path.parent.iterdir())
    assert len([n for n in names if n.endswith(".gz")]) == 2, names
    with make(log.path, committed) as follower:
        assert texts(drain(follower)) == missed


def test_resume_while_the_live_file_is_missing(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(2)
        committed = drain(follower)[-1].checkpoint
    missed = log.append(2)
    log.postfix_logrotate()  # renamed; postlogd recreates the file on its next write
    with make(log.path, committed) as follower:
        assert texts(drain(follower)) == missed
        later = log.append(2)
        assert texts(drain(follower)) == later


def test_resume_from_every_line_delivers_exactly_the_rest(log: RotatingLog) -> None:
    written = log.append(30)
    with make(log.path) as follower:
        lines = drain(follower)
    assert texts(lines) == written
    for index, line in enumerate(lines):
        with make(log.path, line.checkpoint) as resumed:
            assert texts(drain(resumed)) == written[index + 1 :]


def test_a_different_file_under_the_same_name_is_read_from_zero(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(5)
        committed = drain(follower)[-1].checkpoint
    log.path.unlink()  # the inode may well be reused for the next file
    log.path.write_bytes(b"entirely new content that is longer than the old one\n" * 20)
    with make(log.path, committed) as follower:
        got = drain(follower)
        assert len(got) == 20
        assert any("not found" in notice for notice in follower.notices())


def test_partial_line_is_held_then_flushed_after_the_timeout(log: RotatingLog) -> None:
    clock = ManualClock()
    with make(log.path, clock=clock, partial_timeout=5.0) as follower:
        log.append_partial(b"incompl")
        assert drain(follower) == []
        clock.now += 3
        log.append_partial(b"ete")
        assert drain(follower) == []
        clock.now += 4.9
        assert drain(follower) == []  # 4.9 s since it last grew
        clock.now += 0.2
        got = drain(follower)
        assert texts(got) == [b"incomplete"]
        assert got[0].unterminated
        log.append_partial(b" tail\n")
        assert texts(drain(follower)) == [b" tail"]


def test_partial_line_completed_in_time_is_one_line(log: RotatingLog) -> None:
    clock = ManualClock()
    with make(log.path, clock=clock) as follower:
        log.append_partial(b"one ")
        assert drain(follower) == []
        clock.now += 1
        log.append_partial(b"line\n")
        got = drain(follower)
        assert texts(got) == [b"one line"]
        assert not got[0].unterminated


def test_unterminated_last_line_is_delivered_when_rotated_away(log: RotatingLog) -> None:
    with make(log.path, partial_timeout=None) as follower:
        log.append_partial(b"cut off by a crash")
        assert drain(follower) == []
        log.rotate_rename()
        new = log.append(1)
        got = drain(follower)
        assert texts(got) == [b"cut off by a crash", *new]
        assert got[0].unterminated and not got[1].unterminated


def test_huge_line_is_truncated_and_memory_stays_bounded(log: RotatingLog) -> None:
    before = log.append(1)
    with log.path.open("ab") as out:
        for _ in range(40):  # 10 MiB without a newline, written in pieces
            out.write(b"A" * (256 * 1024))
        out.write(b"\n")
    after = log.append(1)
    with make(log.path, max_line_bytes=4096) as follower:
        tracemalloc.start()
        got = drain(follower)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert texts(got) == [before[0], b"A" * 4096, after[0]]
    assert [line.truncated for line in got] == [False, True, False]
    assert peak < 3 * 1024 * 1024, peak


def test_huge_line_arriving_across_polls(log: RotatingLog) -> None:
    with make(log.path, max_line_bytes=100, partial_timeout=None) as follower:
        for _ in range(5):
            log.append_partial(b"B" * 70)
            assert drain(follower) == []
        log.append_partial(b"\n")
        fine = log.append(1)
        got = drain(follower)
        assert texts(got) == [b"B" * 100, *fine]
        assert got[0].truncated
        with make(log.path, got[0].checkpoint) as resumed:
            assert texts(drain(resumed)) == fine


def test_nul_and_garbage_bytes_are_delivered_verbatim(log: RotatingLog) -> None:
    garbage = [b"\x00" * 300, b"\xff\xfe\xc3(\x80 not utf-8", b"", b"\r", b"ok\x00inside"]
    log.path.write_bytes(b"".join(g + b"\n" for g in garbage))
    valid = log.append(2)
    with make(log.path) as follower:
        assert texts(drain(follower)) == [*garbage, *valid]


def test_positions_round_trip_through_json(log: RotatingLog) -> None:
    log.append(3)
    with make(log.path) as follower:
        lines = drain(follower)
    position = lines[1].position
    assert FilePosition.from_json(position.to_json()) == position
    assert position.offset == len(b"".join(line + b"\n" for line in log.written[:2]))
    assert follower.position == lines[-1].position
    for bad in ("not json", '{"v": 99}', '{"v": 1, "path": "x"}', "[1, 2]"):
        with pytest.raises(StateError):
            FilePosition.from_json(bad)


def test_unreadable_file_is_a_notice_not_an_exception(log: RotatingLog) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files regardless of their mode")
    log.append(1)
    log.path.chmod(0)
    with make(log.path) as follower:
        assert follower.poll() == []
        assert any("cannot read" in n for n in follower.notices())


def test_a_directory_in_place_of_the_log_is_a_notice(log: RotatingLog) -> None:
    log.path.mkdir()
    with make(log.path) as follower:
        assert follower.poll() == []
        assert follower.poll() == []
        notices = follower.notices()
        assert len(notices) == 1 and "cannot read" in notices[0], notices
        log.path.rmdir()
        fresh = log.append(1)
        assert texts(drain(follower)) == fresh


def test_compressed_segment_being_written_is_ignored_for_its_plain_twin(log: RotatingLog) -> None:
    with make(log.path) as follower:
        log.append(2)
        committed = drain(follower)[-1].checkpoint
    missed = log.append(2)
    log.rotate_rename()
    rotated = log.path.with_name("mail.log.1")
    rotated.with_name("mail.log.1.gz").write_bytes(b"\x1f\x8b half-written gzip")
    missed += log.append(1)
    with make(log.path, committed) as follower:
        assert texts(drain(follower)) == missed
    rotated.with_name("mail.log.1.gz").unlink()
    gzip_file(rotated)
