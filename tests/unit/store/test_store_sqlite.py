"""The SQLite state store: atomic commits, outbox semantics, history, and faults."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pfwatch.errors import StateError
from pfwatch.events import Finding, event_id_for
from pfwatch.store.sqlite import DB_NAME, SCHEMA_VERSION, StateStore, open_read_only


def exited(pid: int, at: float) -> Finding:
    return Finding(
        "process_exited", at, "observed", {"pid": pid, "daemon": "smtpd", "reason": "max_idle"}
    )


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    opened = StateStore.open(tmp_path / "state")
    yield opened
    opened.close()


def test_fresh_database_is_wal_and_migrated(store: StateStore) -> None:
    assert store.schema_version == SCHEMA_VERSION
    assert store.recovered_from is None
    mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_commit_stores_findings_positions_and_state_together(store: StateStore) -> None:
    findings = [exited(101, 10.0), exited(102, 11.0)]
    result = store.commit(findings, {"file:/var/log/mail.log": {"offset": 42}}, {"n": 2})
    assert [event_id for event_id, _ in result.new] == [event_id_for(f) for f in findings]
    assert store.positions() == {"file:/var/log/mail.log": {"offset": 42}}
    assert store.engine_state() == {"n": 2}
    assert [f for _, f in store.unemitted()] == findings


def test_a_finding_is_new_only_once(store: StateStore) -> None:
    first = store.commit([exited(101, 10.0)], {"log": 1})
    again = store.commit([exited(101, 10.0), exited(103, 12.0)], {"log": 2})
    assert len(first.new) == 1
    assert [f.data["pid"] for _, f in again.new] == [103]
    assert store.positions() == {"log": 2}


def test_mark_emitted_empties_the_outbox(store: StateStore) -> None:
    result = store.commit([exited(101, 10.0), exited(102, 11.0)])
    store.mark_emitted([result.new[0][0]])
    assert [f.data["pid"] for _, f in store.unemitted()] == [102]
    assert store.was_committed(result.new[0][0])


def test_engine_state_none_leaves_it_unchanged(store: StateStore) -> None:
    store.commit(engine_state={"v": 1})
    store.commit(positions={"log": 5})
    assert store.engine_state() == {"v": 1}


def test_change_findings_build_the_history(store: StateStore) -> None:
    detected = Finding(
        "change_detected",
        100.0,
        "observed",
        {
            "change_id": "c1",
            "files": ["main.cf"],
            "parameters": ["smtpd_banner"],
            "predicted_live_at": 160.0,
            "needs": [],
        },
    )
    updated = Finding(
        "change_prediction_updated",
        110.0,
        "predicted",
        {"change_id": "c1", "predicted_live_at": 170.0, "needs": ["reload"]},
    )
    live = Finding("change_live", 165.0, "observed", {"change_id": "c1", "live_at": 165.0})
    store.commit([detected])
    store.commit([updated])
    [record] = store.changes()
    assert (record.predicted_live_at, record.needs, record.live_at) == (170.0, ("reload",), None)
    store.commit([live])
    [record] = store.changes()
    assert record.files == ("main.cf",)
    assert record.summary == {"parameters": ["smtpd_banner"]}
    assert record.live_at == 165.0
    assert record.lag_seconds == 65.0
    assert record.basis == "observed"


def test_snapshot_round_trip(store: StateStore) -> None:
    assert store.last_snapshot() is None
    store.commit(snapshot=(1.0, "d1", '{"a":1}'))
    store.commit(snapshot=(2.0, "d2", '{"a":2}'))
    snap = store.last_snapshot()
    assert snap is not None
    assert (snap.taken_at, snap.digest, snap.json) == (2.0, "d2", '{"a":2}')


def test_state_survives_reopen(tmp_path: Path) -> None:
    first = StateStore.open(tmp_path)
    first.commit([exited(1, 1.0)], {"journal": "s=abc;i=1"}, {"k": [1, 2]})
    first.close()
    second = StateStore.open(tmp_path)
    assert second.positions() == {"journal": "s=abc;i=1"}
    assert second.engine_state() == {"k": [1, 2]}
    assert len(second.unemitted()) == 1
    second.close()


def test_prune_forgets_only_emitted_old_findings(store: StateStore) -> None:
    old = store.commit([exited(1, 1.0)], now=100.0)
    store.commit([exited(2, 2.0)], now=100.0)
    store.mark_emitted([old.new[0][0]])
    assert store.prune_emitted(before=200.0) == 1
    assert len(store.unemitted()) == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"\x00garbage\xff" * 500), id="garbage"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:1500]), id="truncated"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes()[:100] + b"\xde\xad" * 2000), id="scribbled"
        ),
    ],
)
def test_corrupt_database_is_set_aside_and_replaced(tmp_path: Path, damage: object) -> None:
    first = StateStore.open(tmp_path)
    for pid in range(50):
        first.commit([exited(pid, float(pid))], {"log": pid})
    first.close()
    db = tmp_path / DB_NAME
    damage(db)  # type: ignore[operator]
    damaged = db.read_bytes()

    store = StateStore.open(tmp_path, now=lambda: 1_700_000_000.0)

    assert store.recovered_from == tmp_path / f"{DB_NAME}.corrupt-20231114T221320Z"
    assert store.recovered_from.read_bytes() == damaged
    assert store.positions() == {}
    store.commit([exited(1, 1.0)], {"log": 1})
    assert store.positions() == {"log": 1}
    store.close()


def test_disk_full_raises_state_error_and_keeps_nothing_partial(store: StateStore) -> None:
    store.commit([exited(0, 0.0)], {"log": 0}, {"n": 0})
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [
        Finding("process_exited", float(i), "observed", {"pid": i, "pad": "x" * 4000})
        for i in range(1, 50)
    ]
    with pytest.raises(StateError, match="full"):
        store.commit(big, {"log": 49}, {"n": 49})
    assert store.positions() == {"log": 0}
    assert store.engine_state() == {"n": 0}
    assert len(store.unemitted()) == 1
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert len(store.commit(big, {"log": 49}).new) == 49


def test_state_dir_under_a_regular_file_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StateError, match="not-a-dir"):
        StateStore.open(blocker / "state")
    fallback = StateStore.open_in_memory()
    assert len(fallback.commit([exited(1, 1.0)]).new) == 1


def test_database_path_taken_by_a_directory_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).mkdir()
    with pytest.raises(StateError, match=DB_NAME):
        StateStore.open(tmp_path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer"):
        StateStore.open(tmp_path)


def test_read_only_open(tmp_path: Path) -> None:
    assert open_read_only(tmp_path) is None
    writer = StateStore.open(tmp_path)
    writer.commit([Finding("change_detected", 5.0, "observed", {"change_id": "c9"})])
    reader = open_read_only(tmp_path)
    assert reader is not None
    assert [c.change_id for c in reader.changes()] == ["c9"]
    with pytest.raises(StateError):
        reader.commit(positions={"log": 1})
    reader.close()
    writer.close()


@pytest.mark.parametrize("directory", ["/proc/self", "/proc/self/pfwatch-state"])
def test_unwritable_directory_even_for_root_is_a_state_error(directory: str) -> None:
    # /proc refuses new files to every user, root included: a real "permission denied".
    with pytest.raises(StateError, match=directory):
        StateStore.open(directory, exclusive=False)
