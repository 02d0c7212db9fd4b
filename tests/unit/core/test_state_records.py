"""Typed records of the engine state: needs, and state written by earlier versions."""

from __future__ import annotations

import json

import pytest

from pfwatch.core.state import Change, EngineState, Need, from_json, to_json
from pfwatch.errors import StateError
from pfwatch.events import TableEdit
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
