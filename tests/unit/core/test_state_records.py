"""Typed records of the engine state: needs, and state written by earlier versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pfwatch.core.fold import step
from pfwatch.core.records import Impact, MasterStart, Need, Reload, Unseen
from pfwatch.core.state import Change, EngineState, from_json, to_json
from pfwatch.errors import StateError
from pfwatch.events import TableEdit, Tick
from pfwatch.service.state_doc import state_document

OLD_NEED = {
    "action": "postmap",
    "why": "virtual_alias_maps: hash table",
    "source": "src/util/dict_db.c:1",
    "target": "/etc/postfix/virtual",
    "satisfied_at": None,
    "satisfied_by": "",
}


def _state_with_need(need: Need) -> EngineState:
    state = EngineState()
    state.changes["c1"] = Change(
        change_id="c1",
        at=10.0,
        files=["/etc/postfix/virtual"],
        parameters=[],
        services=[],
        tables=[
            TableEdit(
                "hash:/etc/postfix/virtual",
                "hash",
                "/etc/postfix/virtual",
                "/etc/postfix/virtual.db",
                source_changed=True,
                compiled_changed=False,
                keys_changed=("a@example.com",),
                parameters=("virtual_alias_maps",),
            )
        ],
        digest="d",
        needs=[need],
    )
    return state


def test_a_need_is_frozen_and_satisfied_by_replacement() -> None:
    need = Need.from_dict(OLD_NEED)
    done = need.satisfied(12.5, "postmap")
    assert need.satisfied_at is None and (done.satisfied_at, done.satisfied_by) == (12.5, "postmap")
    with pytest.raises(AttributeError):
        need.satisfied_at = 1.0  # type: ignore[misc]
    assert done.as_dict() == {**OLD_NEED, "satisfied_at": 12.5, "satisfied_by": "postmap"}


def test_the_serialised_state_is_unchanged_and_both_writers_agree() -> None:
    state = _state_with_need(Need.from_dict(OLD_NEED).satisfied(12.5, "postmap"))
    doc = json.loads(to_json(state))
    assert doc["changes"]["c1"]["needs"] == [
        {**OLD_NEED, "satisfied_at": 12.5, "satisfied_by": "postmap"}
    ]
    assert json.loads(json.dumps(state_document(state), sort_keys=True)) == doc


def test_state_written_by_the_previous_version_loads() -> None:
    doc = json.loads(to_json(_state_with_need(Need.from_dict(OLD_NEED))))
    doc["changes"]["c1"]["needs"] = [dict(OLD_NEED)]  # as the dict-based engine wrote it
    state = from_json(json.dumps(doc))
    assert state.changes["c1"].needs == [Need.from_dict(OLD_NEED)]
    assert (
        state.changes["c1"].tables
        == _state_with_need(Need.from_dict(OLD_NEED)).changes["c1"].tables
    )


def test_an_unknown_need_action_is_a_state_error() -> None:
    doc = json.loads(to_json(_state_with_need(Need.from_dict(OLD_NEED))))
    doc["changes"]["c1"]["needs"][0]["action"] = "rebuild"
    with pytest.raises(StateError, match="unknown need action"):
        from_json(json.dumps(doc))


def test_an_unknown_change_status_is_a_state_error() -> None:
    doc = json.loads(to_json(_state_with_need(Need.from_dict(OLD_NEED))))
    doc["changes"]["c1"]["status"] = "maybe"
    with pytest.raises(StateError, match="unknown status 'maybe'"):
        from_json(json.dumps(doc))


STATE_BEFORE_TYPED_RECORDS = Path(__file__).with_name("state_written_before_typed_records.json")
"""An engine state that the dict-based engine wrote (main at 1571315): a routing-cache
window with holders, resolved exits with and without bounds, an unseen pickup, an
unsatisfied postmap and predictions, in five changes; a master start and a reload."""


def test_a_state_written_before_the_typed_records_loads_and_writes_back_unchanged() -> None:
    text = STATE_BEFORE_TYPED_RECORDS.read_text(encoding="utf-8")
    state = from_json(text)
    routed, table, postmap, _, pickup = (state.changes[f"c{n}"] for n in range(1, 6))
    window = routed.routing_cache
    assert window is not None and window.holders == ("postfix/smtpd/40", "postfix/smtpd/30")
    assert {i.daemon for i in routed.impacts} >= {"trivial-rewrite", "smtpd"}
    assert all(isinstance(i, Impact) for i in routed.impacts)
    rewriter = routed.resolved["postfix/trivial-rewrite/~1"]
    assert rewriter.earliest is not None and rewriter.latest is not None
    session_end = table.resolved["postfix/smtpd/40"]
    assert (session_end.reason, session_end.earliest, session_end.latest) == (
        "session_end",
        None,
        None,
    )
    assert postmap.status == "needs_action" and postmap.prediction is not None
    assert postmap.prediction.needs == ("postmap",)
    assert pickup.unseen == [
        Unseen(
            service="pickup",
            daemon="pickup",
            until=1_700_006_017.0,
            why="master keeps a pickup running; every 60 s wakeup counts as a use, so it "
            "exits within 100 wakeups",
        )
    ]
    assert state.master == {"postfix": MasterStart(1, 1_700_000_000.0)}
    assert state.reloads == [Reload("postfix", 1_700_000_000.5)]
    written = json.dumps(json.loads(text), sort_keys=True)
    assert to_json(state) == written
    assert json.dumps(state_document(state), sort_keys=True) == written


def test_a_state_goes_on_after_loading_the_earlier_document() -> None:
    state = from_json(STATE_BEFORE_TYPED_RECORDS.read_text(encoding="utf-8"))
    step(state, Tick(state.now + 400))
    assert state.changes["c1"].status == "live"
    assert state.changes["c1"].live_at == state.changes["c1"].routing_cache.latest  # type: ignore[union-attr]


def test_a_malformed_record_is_a_state_error() -> None:
    doc = json.loads(STATE_BEFORE_TYPED_RECORDS.read_text(encoding="utf-8"))
    doc["changes"]["c1"]["impacts"][0]["mode"] = "sometimes"
    with pytest.raises(StateError, match="unknown impact mode 'sometimes'"):
        from_json(json.dumps(doc))
