"""``--events-file``: a restart after a crash between writing and marking writes nothing
twice and loses nothing, and a torn last line is cut."""

from __future__ import annotations

import json
from pathlib import Path

from pfwatch.events import Finding
from pfwatch.service.events_file import open_events_file, reconcile
from pfwatch.store.outbox import Outbox
from pfwatch.store.sqlite import StateStore


def findings(count: int) -> list[Finding]:
    return [Finding("process_started", 1000.0 + n, "observed", {"pid": n}) for n in range(count)]


def test_crash_between_write_and_mark_is_repaired(tmp_path: Path) -> None:
    path, state = tmp_path / "events.jsonl", tmp_path / "state"
    store = StateStore.open(state, exclusive=True)
    batch = findings(5)
    committed = store.commit(batch, {"file:x": {"offset": 5}}, {"n": 1})
    sink, stream = open_events_file(path)
    for _event_id, finding in committed.new[:3]:  # died after three lines, before marking
        sink.emit(finding)
    stream.write('{"event":"process_started","ts":')  # and in the middle of the fourth
    stream.close()
    store.close()

    store = StateStore.open(state, exclusive=True)
    assert len(store.unemitted()) == 5
    assert reconcile(path, store) == 3
    sink, stream = open_events_file(path)
    assert Outbox(store, sink).replay_pending() == 2
    stream.close()
    store.close()

    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["pid"] for r in records] == [0, 1, 2, 3, 4]
    assert len({r["event_id"] for r in records}) == 5


def test_nothing_pending_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event":"a","event_id":"x"}\n')
    store = StateStore.open(tmp_path / "state")
    try:
        assert reconcile(path, store) == 0
    finally:
        store.close()
    assert path.read_text() == '{"event":"a","event_id":"x"}\n'


def test_pending_events_beyond_one_chunk_are_found(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    store = StateStore.open(tmp_path / "state")
    try:
        big = [
            Finding("process_started", 1.0 + n, "observed", {"pid": n, "pad": "x" * 300})
            for n in range(600)
        ]
        committed = store.commit(big)
        sink, stream = open_events_file(path)
        for _event_id, finding in committed.new[:550]:
            sink.emit(finding)
        stream.close()
        assert reconcile(path, store) == 550
        assert len(store.unemitted()) == 50
    finally:
        store.close()
