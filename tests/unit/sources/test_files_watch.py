"""The directory watcher with real files and real watchdog observers (inotify).

Each test performs the file operation the way the tool named in it does (editor
rename-into-place, ``sed -i``, ``postmap``'s replace, a Kubernetes ConfigMap ``..data``
swap) and asserts one debounced callback carrying the touched paths.
"""

from __future__ import annotations

import os
import queue
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pfwatch.sources.files import DirectoryWatcher

QUIET = 0.3


class Recorder:
    def __init__(self) -> None:
        self.batches: queue.Queue[frozenset[str]] = queue.Queue()
        self.problems: list[tuple[str, str]] = []

    def __call__(self, paths: frozenset[str]) -> None:
        self.batches.put(paths)

    def problem(self, directory: str, message: str) -> None:
        self.problems.append((directory, message))

    def next(self, timeout: float = 5.0) -> frozenset[str]:
        return self.batches.get(timeout=timeout)

    def none_within(self, seconds: float) -> bool:
        try:
            extra = self.batches.get(timeout=seconds)
        except queue.Empty:
            return True
        pytest.fail(f"unexpected extra callback: {sorted(extra)}")


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    directory = tmp_path / "postfix"
    directory.mkdir()
    (directory / "main.cf").write_text("myhostname = a.example\n")
    (directory / "master.cf").write_text("smtp inet n - y - - smtpd\n")
    return directory


@pytest.fixture
def watch(conf: Path) -> Iterator[tuple[DirectoryWatcher, Recorder]]:
    recorder = Recorder()
    watcher = DirectoryWatcher(
        [conf], recorder, quiet=QUIET, rescan=0.2, on_problem=recorder.problem
    ).start()
    yield watcher, recorder
    watcher.stop()


def test_rename_into_place_is_one_change(
    conf: Path, watch: tuple[DirectoryWatcher, Recorder]
) -> None:
    _, recorder = watch
    temp = conf / ".main.cf.swp"
    temp.write_text("myhostname = b.example\n")
    temp.replace(conf / "main.cf")
    batch = recorder.next()
    assert str(conf / "main.cf") in batch
    recorder.none_within(QUIET * 2)


def test_in_place_write_and_sed_i(conf: Path, watch: tuple[DirectoryWatcher, Recorder]) -> None:
    _, recorder = watch
    with (conf / "main.cf").open("a") as handle:
        handle.write("relayhost = [mx.example]\n")
    assert str(conf / "main.cf") in recorder.next()
    # sed -i: write a sibling temporary file, then rename it over the original
    sed_temp = conf / "sedAbC123"
    shutil.copy(conf / "master.cf", sed_temp)
    with sed_temp.open("a") as handle:
        handle.write("submission inet n - y - - smtpd\n")
    os.rename(sed_temp, conf / "master.cf")
    batch = recorder.next()
    assert str(conf / "master.cf") in batch
    recorder.none_within(QUIET * 2)


def test_a_burst_longer_than_the_quiet_period_is_still_one_change_per_pause(
    conf: Path, watch: tuple[DirectoryWatcher, Recorder]
) -> None:
    _, recorder = watch
    started = time.monotonic()
    for i in range(8):
        (conf / "main.cf").write_text(f"myhostname = host{i}.example\n")
        time.sleep(QUIET / 4)
    batch = recorder.next()
    assert time.monotonic() - started >= 8 * QUIET / 4
    assert batch == {str(conf / "main.cf")}
    recorder.none_within(QUIET * 2)


def test_postmap_replacing_the_db_file(
    conf: Path, watch: tuple[DirectoryWatcher, Recorder]
) -> None:
    _, recorder = watch
    (conf / "transport").write_text("example.com smtp:[relay]\n")
    (conf / "transport.db").write_bytes(b"old")
    recorder.next()
    new = conf / "transport.db.tmp"
    new.write_bytes(b"new database")
    new.replace(conf / "transport.db")
    assert str(conf / "transport.db") in recorder.next()


def test_reading_files_is_not_a_change(
    conf: Path, watch: tuple[DirectoryWatcher, Recorder]
) -> None:
    _, recorder = watch
    for _ in range(3):
        (conf / "main.cf").read_text()
        (conf / "master.cf").read_bytes()
    recorder.none_within(QUIET * 3)


def test_kubernetes_configmap_symlink_swap(tmp_path: Path) -> None:
    volume = tmp_path / "cm"
    old = volume / "..2026_11_22_00_00_00.1"
    old.mkdir(parents=True)
    (old / "main.cf").write_text("myhostname = a\n")
    (volume / "..data").symlink_to(old.name)
    (volume / "main.cf").symlink_to("..data/main.cf")
    recorder = Recorder()
    watcher = DirectoryWatcher([volume], recorder, quiet=QUIET).start()
    try:
        new = volume / "..2026_11_22_00_01_00.2"
        new.mkdir()
        (new / "main.cf").write_text("myhostname = b\n")
        (volume / "..data_tmp").symlink_to(new.name)
        os.rename(volume / "..data_tmp", volume / "..data")
        shutil.rmtree(old)
        # a descheduled test may let the quiet period pass between the steps; what
        # matters is that the batch carrying the swap also names the file behind it
        seen: set[str] = set()
        while not {str(volume / "..data"), str(old)} <= seen:
            batch = recorder.next()
            seen |= batch
            if str(volume / "..data") in batch:
                assert str(volume / "main.cf") in batch
        assert (volume / "main.cf").read_text() == "myhostname = b\n"
        recorder.none_within(QUIET * 2)
    finally:
        watcher.stop()


def test_directory_that_vanishes_and_comes_back(
    conf: Path, watch: tuple[DirectoryWatcher, Recorder]
) -> None:
    watcher, recorder = watch
    shutil.rmtree(conf)
    assert str(conf) in recorder.next()
    deadline = time.monotonic() + 5
    while str(conf) not in watcher.missing and time.monotonic() < deadline:
        time.sleep(0.05)
    assert str(conf) in watcher.missing
    assert any(directory == str(conf) for directory, _ in recorder.problems)
    conf.mkdir()
    assert str(conf) in recorder.next()
    assert str(conf) in watcher.watched
    (conf / "main.cf").write_text("myhostname = back.example\n")
    batch = recorder.next()
    assert str(conf / "main.cf") in batch


def test_missing_at_start_and_set_directories(tmp_path: Path) -> None:
    tables = tmp_path / "tables"
    recorder = Recorder()
    watcher = DirectoryWatcher(
        [tables], recorder, quiet=QUIET, rescan=0.2, on_problem=recorder.problem
    ).start()
    try:
        assert watcher.watched == frozenset() and watcher.missing == {str(tables)}
        tables.mkdir()
        assert str(tables) in recorder.next()
        other = tmp_path / "other"
        other.mkdir()
        watcher.set_directories([other])
        assert watcher.watched == {str(other)}
        (tables / "ignored").write_text("x")
        (other / "access").write_text("1.2.3.4 REJECT\n")
        assert recorder.next() == {str(other / "access")}
    finally:
        watcher.stop()


def test_a_failing_callback_is_reported_and_watching_goes_on(conf: Path) -> None:
    calls: list[frozenset[str]] = []
    problems: list[str] = []

    def flaky(paths: frozenset[str]) -> None:
        calls.append(paths)
        if len(calls) == 1:
            raise ValueError("boom")

    watcher = DirectoryWatcher(
        [conf], flaky, quiet=0.1, on_problem=lambda _d, message: problems.append(message)
    ).start()
    try:
        (conf / "main.cf").write_text("a = 1\n")
        deadline = time.monotonic() + 5
        while not problems and time.monotonic() < deadline:
            time.sleep(0.05)
        (conf / "main.cf").write_text("a = 2\n")
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert problems and "boom" in problems[0]
    assert len(calls) == 2


def test_directory_replaced_by_a_file_is_reported_not_fatal(tmp_path: Path) -> None:
    target = tmp_path / "tables"
    target.mkdir()
    recorder = Recorder()
    watcher = DirectoryWatcher(
        [target], recorder, quiet=QUIET, rescan=0.2, on_problem=recorder.problem
    ).start()
    try:
        target.rmdir()
        target.write_text("I am a file now\n")
        assert str(target) in recorder.next()
        deadline = time.monotonic() + 5
        while str(target) not in watcher.missing and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.missing == {str(target)}
        assert any("not a directory" in message for _, message in recorder.problems)
    finally:
        watcher.stop()


def test_stop_without_start_is_harmless(tmp_path: Path) -> None:
    DirectoryWatcher([tmp_path], lambda _paths: None).stop()
