"""The fast state document is exactly what ``to_json`` writes and ``from_json`` reads."""

from __future__ import annotations

import json

from pfwatch.core.fold import run
from pfwatch.core.state import EngineState, from_json, to_json
from pfwatch.service.state_doc import state_document
from pfwatch.testing.streams import StreamBuilder, make_facts, table_edit


def busy_state() -> EngineState:
    facts = make_facts({"smtpd_banner": "x"}, max_idle=10.0)
    stream = StreamBuilder(1_000_000.0).snapshot(facts)
    for pid in range(100, 140):
        stream.session(pid, duration=0.5, queue_id=f"ABC{pid}").wait(0.3)
    stream.procs([("qmgr", 7, 999_000.0), ("smtpd", 139, 1_000_010.0)])
    stream.change(facts, parameters=["smtpd_banner"], change_id="one")
    stream.change(facts, tables=[table_edit("hash:/etc/postfix/virtual", ["virtual_alias_maps"])])
    stream.wait(300).tick()
    state = EngineState()
    run(state, stream.events)
    return state


def test_same_document_as_to_json() -> None:
    state = busy_state()
    assert state.history and state.changes and state.facts is not None
    fast = json.loads(json.dumps(state_document(state), sort_keys=True))
    assert fast == json.loads(to_json(state))
    assert from_json(json.dumps(fast)) == from_json(to_json(state))


def test_empty_state() -> None:
    state = EngineState()
    assert json.loads(json.dumps(state_document(state))) == json.loads(to_json(state))
