"""A long-running engine forgets settled changes and still concludes the same."""

from __future__ import annotations

from pfwatch.core.fold import run
from pfwatch.core.retention import forget_settled_changes
from pfwatch.core.state import EngineState, to_json
from pfwatch.events import Finding
from pfwatch.testing.streams import StreamBuilder, make_facts

T0 = 1_700_000_000.0


def live_ids(findings: list[Finding]) -> list[str]:
    return [str(f.data["change_id"]) for f in findings if f.name == "change_live"]


def edits_with_traffic(count: int) -> StreamBuilder:
    """``count`` smtpd edits, each made live by its old smtpd going idle."""
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=10)
    b.snapshot(facts)
    for number in range(count):
        b.session(1000 + number, duration=1)
        b.wait(1).change(facts, parameters=["smtpd_banner"])
        b.wait(15).tick()
    return b


def test_only_the_newest_settled_changes_are_kept() -> None:
    state = EngineState()
    found = run(state, edits_with_traffic(12).events)
    assert len(live_ids(found)) == 12
    before = len(to_json(state))
    dropped = forget_settled_changes(state, keep=4)
    assert dropped == [f"c{n}" for n in range(1, 9)]
    assert sorted(state.changes) == ["c10", "c11", "c12", "c9"]
    assert len(to_json(state)) < before
    assert forget_settled_changes(state, keep=4) == []


def test_pending_changes_are_never_forgotten() -> None:
    b = edits_with_traffic(3)
    facts = make_facts({}, max_idle=10)
    b.session(2000, duration=1)
    b.change(facts, files=["master.cf"], services=["smtp/inet"], change_id="needs-reload")
    b.wait(1).tick()
    state = EngineState()
    run(state, b.events)
    assert state.changes["needs-reload"].status != "live"
    forget_settled_changes(state, keep=0)
    assert list(state.changes) == ["needs-reload"]


def test_pruning_between_edits_gives_the_same_findings() -> None:
    """What the engine says about later edits does not depend on the forgotten ones."""
    events = edits_with_traffic(10).events
    whole = EngineState()
    expected = run(whole, events)
    pruned = EngineState()
    got: list[Finding] = []
    for event in events:
        got += run(pruned, [event])
        forget_settled_changes(pruned, keep=2)
    assert [(f.name, f.at, f.data.get("change_id")) for f in got] == [
        (f.name, f.at, f.data.get("change_id")) for f in expected
    ]
    assert len(pruned.changes) <= 3 < len(whole.changes)
