"""Crash tests of the follower: no line lost, none delivered twice (issue 3 acceptance).

1. A seeded random model test: a writer appends (sometimes half a line at a time) and
   rotates (rename, rename without create, compression, copytruncate, postfix logrotate)
   while a follower polls with random byte budgets and "crashes" at random points: only
   the position of the last consumed line survives, and the next follower is built from
   its JSON. The concatenation of consumed lines must equal the written lines, always.
2. A writer thread rotating every few milliseconds, racing a follower that crashes at
   random points: rotations land between any two steps of the follower.
3. The same with a real process killed by SIGKILL at random moments
   (``follow_into_sqlite.py`` commits each line and its position in one transaction).
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rotating_log import RotatingLog

from pfwatch.sources.follow import Follower

ROUNDS = 200
HELPER = Path(__file__).with_name("follow_into_sqlite.py")


def write_something(log: RotatingLog, rng: random.Random, family: str) -> None:
    roll = rng.random()
    if roll < 0.55:
        log.append(rng.randint(1, 12), split=rng.random() < 0.3)
    elif roll < 0.65:
        log.begin_line()
    elif family == "none":
        log.append(1)
    elif family == "numbered":
        if roll < 0.8:
            log.rotate_rename(create=rng.random() < 0.7, compress=rng.random() < 0.6)
        elif log.path.exists():
            log.copytruncate()
    elif roll < 0.85:
        if log.path.exists():
            log.postfix_logrotate()
    else:
        log.compress_pending()


@pytest.mark.parametrize("family", ["numbered", "postfix"])
def test_random_crashes_lose_nothing_and_repeat_nothing(tmp_path: Path, family: str) -> None:
    rng = random.Random(f"follower-crash-{family}")
    log = RotatingLog(tmp_path / "mail.log", rng, retention=60)
    committed: str | None = None
    consumed: list[bytes] = []
    crashes = 0
    for _round in range(ROUNDS):
        follower = Follower(
            log.path, committed, start="beginning", rotate_wait=0.0, partial_timeout=None
        )
        for _step in range(rng.randint(1, 5)):
            for _ in range(rng.randint(0, 3)):
                # no rotation before the first commit: a first start reads the live file only
                write_something(log, rng, family if committed else "none")
            lines = follower.poll(max_bytes=rng.choice([150, 2000, 1 << 20]))
            crash = bool(lines) and rng.random() < 0.3
            taken = lines[: rng.randrange(len(lines) + 1)] if crash else lines
            consumed += [line.data for line in taken]
            if taken:
                committed = taken[-1].checkpoint
            assert consumed == log.written[: len(consumed)], f"round {_round}"
            assert not any(line.unterminated or line.truncated for line in taken)
            if crash:
                crashes += 1
                break
        assert follower.notices() == []
        follower.close()
    log.finish_line()
    with Follower(log.path, committed, rotate_wait=0.0, partial_timeout=None) as follower:
        while lines := follower.poll():
            consumed += [line.data for line in lines]
    assert consumed == log.written
    assert crashes > 20 and len(log.written) > 1000  # the test exercised what it claims


def test_rotations_racing_a_crashing_follower(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "mail.log", random.Random("race-writer"), retention=60)
    log.append(5)
    stop = threading.Event()

    def writer() -> None:
        rng = random.Random("race-ops")
        while not stop.is_set():
            roll = rng.random()
            if roll < 0.8:
                log.append(rng.randint(1, 30), split=rng.random() < 0.3)
            elif roll < 0.9:
                log.rotate_rename(compress=rng.random() < 0.5)
            elif log.path.exists():
                log.copytruncate()
            time.sleep(rng.uniform(0, 0.002))

    rng = random.Random("race-follower")
    committed: str | None = None
    consumed: list[bytes] = []
    follower = Follower(log.path, start="beginning", rotate_wait=0.0, partial_timeout=None)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            lines = follower.poll()
            crash = bool(lines) and rng.random() < 0.3
            taken = lines[: rng.randrange(len(lines) + 1)] if crash else lines
            consumed += [line.data for line in taken]
            if taken:
                committed = taken[-1].checkpoint
            if crash:
                follower.close()
                follower = Follower(log.path, committed, rotate_wait=0.0, partial_timeout=None)
            time.sleep(rng.uniform(0, 0.003))
    finally:
        stop.set()
        thread.join()
        follower.close()
    log.finish_line()
    with Follower(log.path, committed, rotate_wait=0.0, partial_timeout=None) as follower:
        while lines := follower.poll():
            consumed += [line.data for line in lines]
    assert len(log.written) > 2000
    assert consumed == log.written


def count_lines(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=5)
    try:
        return int(con.execute("SELECT count(*) FROM lines").fetchone()[0])
    except sqlite3.OperationalError:  # the helper has not created its tables yet
        return 0
    finally:
        con.close()


def test_sigkill_at_random_moments_and_restart_from_the_saved_position(tmp_path: Path) -> None:
    rng = random.Random("sigkill")
    log = RotatingLog(tmp_path / "mail.log", rng, retention=60)
    db = tmp_path / "delivered.sqlite"
    kills = 0
    for _round in range(8):
        helper = subprocess.Popen(
            [sys.executable, str(HELPER), str(log.path), str(db)], stdout=subprocess.PIPE
        )
        if _round == 0:  # a first start reads the live file only: no rotation before it runs
            assert helper.stdout is not None
            assert helper.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + rng.uniform(0.3, 0.8)
        while time.monotonic() < deadline:
            roll = rng.random()
            if roll < 0.8:
                log.append(rng.randint(1, 30), split=rng.random() < 0.3)
            elif roll < 0.9:
                log.rotate_rename(compress=rng.random() < 0.5)
            elif log.path.exists():
                log.copytruncate()
            time.sleep(rng.uniform(0, 0.01))
        helper.send_signal(signal.SIGKILL)
        helper.wait()
        assert helper.stdout is not None
        helper.stdout.close()
        kills += 1
    helper = subprocess.Popen(
        [sys.executable, str(HELPER), str(log.path), str(db)], stdout=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 15
        while count_lines(db) < len(log.written) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)  # give a would-be duplicate the chance to show up
    finally:
        helper.kill()
        helper.wait()
        assert helper.stdout is not None
        helper.stdout.close()
    con = sqlite3.connect(db)
    delivered = [row[0] for row in con.execute("SELECT data FROM lines ORDER BY n")]
    con.close()
    assert kills == 8
    assert len(log.written) > 500
    assert delivered == log.written
