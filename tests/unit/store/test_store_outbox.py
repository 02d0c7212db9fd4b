"""The outbox: commit-then-write, replay after a crash, degraded mode on a broken store,
and the one-watcher-per-state-directory lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pfwatch.errors import StateError
from pfwatch.events import Finding, event_id_for
from pfwatch.store.outbox import Outbox, state_error_finding, state_reset_finding
from pfwatch.store.sqlite import StateStore
from pfwatch.testing.clock import FakeClock


class ListSink:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def emit(self, finding: Finding) -> None:
        self.findings.append(finding)

    def close(self) -> None:
        pass


def exited(pid: int) -> Finding:
    return Finding("process_exited", float(pid), "observed", {"pid": pid})


def test_deliver_commits_writes_and_marks(tmp_path: Path) -> None:
    store, sink = StateStore.open(tmp_path), ListSink()
    outbox = Outbox(store, sink)
    written = outbox.deliver([exited(1), exited(2)], {"log": 2}, {"n": 2})
    assert len(written) == 2 and [f.data["pid"] for f in sink.findings] == [1, 2]
    assert store.unemitted() == [] and store.positions() == {"log": 2}
    assert outbox.deliver([exited(2), exited(3)], {"log": 3}) == [event_id_for(exited(3))]
    assert [f.data["pid"] for f in sink.findings] == [1, 2, 3]


def test_replay_after_crash_writes_committed_but_unwritten(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path)
    store.commit([exited(1), exited(2)], {"log": 2})  # crashed before writing
    store.close()
    sink = ListSink()
    outbox = Outbox(StateStore.open(tmp_path), sink)
    assert outbox.replay_pending() == 2
    assert outbox.replay_pending() == 0
    assert [f.data["pid"] for f in sink.findings] == [1, 2]


def test_disk_full_degrades_then_recovers(tmp_path: Path) -> None:
    store, sink, clock = StateStore.open(tmp_path), ListSink(), FakeClock(0.0)
    problems: list[StateError] = []
    recovered: list[bool] = []
    outbox = Outbox(
        store,
        sink,
        on_state_problem=problems.append,
        on_state_recovered=lambda: recovered.append(True),
        retry_seconds=10.0,
        clock=clock.now,
    )
    outbox.deliver([exited(1)], {"log": 1})
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [
        Finding("process_exited", float(i), "observed", {"pid": i, "pad": "x" * 5000})
        for i in range(2, 12)
    ]
    outbox.deliver(big, {"log": 11})
    assert len(problems) == 1 and "full" in str(problems[0]) and not outbox.state_ok
    assert len(sink.findings) == 11  # still delivered, from memory
    outbox.deliver([*big[:3], exited(12)], {"log": 12})  # repeats dropped, no new complaint
    assert len(sink.findings) == 12 and len(problems) == 1
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    clock.advance(11.0)
    outbox.deliver([exited(13)], {"log": 13})
    assert recovered == [True] and outbox.state_ok
    assert [f.data["pid"] for f in sink.findings][-1] == 13
    assert store.positions() == {"log": 13} and store.unemitted() == []


def test_without_any_store_it_still_delivers_once() -> None:
    sink = ListSink()
    outbox = Outbox(None, sink)
    assert not outbox.state_ok
    outbox.deliver([exited(1)])
    outbox.deliver([exited(1), exited(2)])
    assert [f.data["pid"] for f in sink.findings] == [1, 2]


def test_exclusive_lock_refuses_a_second_watcher(tmp_path: Path) -> None:
    first = StateStore.open(tmp_path, exclusive=True)
    with pytest.raises(StateError, match="another pfwatch"):
        StateStore.open(tmp_path, exclusive=True)
    first.close()
    StateStore.open(tmp_path, exclusive=True).close()


def test_lock_dies_with_its_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pfwatch.store.sqlite import StateStore;"
            f"StateStore.open({str(tmp_path)!r}, exclusive=True); print('held', flush=True);"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(StateError, match=f"pid {holder.pid}"):
        StateStore.open(tmp_path, exclusive=True)
    holder.kill()
    holder.wait(timeout=10)
    holder.stdout.close()
    StateStore.open(tmp_path, exclusive=True).close()


def test_state_findings(tmp_path: Path) -> None:
    (tmp_path / "state.sqlite").write_bytes(b"\xff" * 4096)
    store = StateStore.open(tmp_path)
    reset = state_reset_finding(store, 5.0)
    assert reset is not None and reset.name == "state_reset"
    assert reset.data["kept_as"].startswith(str(tmp_path / "state.sqlite.corrupt-"))
    assert state_reset_finding(StateStore.open_in_memory(), 5.0) is None
    error = state_error_finding(StateError("disk full"), 6.0, "/x")
    assert (error.name, error.data) == ("state_error", {"path": "/x", "message": "disk full"})
