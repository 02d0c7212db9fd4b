"""A log that mixes releases: each process is judged by the release its master logged
when the process was born; an upgrade between two master starts is an event; a version
pfwatch cannot parse is a warning and the shipped table, never a crash."""

from __future__ import annotations

import json

from pfwatch.core.fold import run
from pfwatch.core.state import EngineState, from_json, to_json
from pfwatch.events import Finding
from pfwatch.service.state_doc import state_document
from pfwatch.testing.streams import StreamBuilder, make_facts

T0 = 1_700_000_000.0
NEWER_PARAMETER = "smtpd_client_ipv4_prefix_length"
"""Read by smtpd from Postfix 3.8 on (knowledge/data/releases/param-readers-3.8.20.json)."""


def named(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.name == name]


def _edit_under(version: str, parameter: str) -> tuple[EngineState, list[Finding]]:
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=100, max_use=100)
    b.snapshot(facts).master("master_started", version=version)
    b.wait(1).log("session_connect", "smtpd", 101, client="c[192.0.2.1]")
    b.wait(1).change(facts, parameters=[parameter])
    state = EngineState()
    return state, run(state, b.events)


def test_a_process_of_a_release_that_does_not_read_the_parameter_is_not_stale() -> None:
    _, old = _edit_under("3.7.11", NEWER_PARAMETER)
    assert named(old, "change_detected")[0].data["stale_processes"] == []
    _, new = _edit_under("3.10.13", NEWER_PARAMETER)
    assert named(new, "change_detected")[0].data["stale_processes"] == ["smtpd[101]"]


def test_a_parameter_every_release_reads_holds_back_every_release() -> None:
    for version in ("3.7.11", "3.10.13", ""):
        _, found = _edit_under(version, "smtpd_banner")
        assert named(found, "change_detected")[0].data["stale_processes"] == ["smtpd[101]"]


def test_each_process_keeps_the_release_of_its_birth() -> None:
    state, _ = _edit_under("3.10.13", "smtpd_banner")
    assert state.processes["postfix/smtpd/101"].release == "3.10.13"
    doc = json.loads(to_json(state))
    assert doc["processes"]["postfix/smtpd/101"]["release"] == "3.10.13"
    assert from_json(to_json(state)).processes["postfix/smtpd/101"].release == "3.10.13"
    assert state_document(state) == doc


def test_an_upgrade_between_master_starts_is_an_event_per_instance() -> None:
    b = StreamBuilder(T0)
    b.master("master_started", version="3.7.11").wait(60)
    b.master("master_stopped").wait(5)
    b.master("master_started", pid=2, version="3.10.13").wait(60)
    b.master("master_started", pid=3, version="3.10.13")
    other = StreamBuilder(T0 + 1, instance="postfix-out")
    other.master("master_started", pid=9, version="3.5.25")
    events = sorted([*b.events, *other.events], key=lambda e: e.at)
    found = run(EngineState(), events)
    upgraded = named(found, "postfix_upgraded")
    assert [(f.at, dict(f.data)) for f in upgraded] == [
        (T0 + 65, {"instance": "postfix", "from": "3.7.11", "to": "3.10.13"})
    ]


def test_an_unparseable_version_warns_and_uses_the_shipped_table() -> None:
    state, found = _edit_under("vintage", NEWER_PARAMETER)
    warned = named(found, "postfix_release_unparsed")
    assert len(warned) == 1
    assert warned[0].data["table"] == "3.7.11"
    assert "cannot parse Postfix version 'vintage'" in warned[0].data["note"]
    # judged with the 3.7.11 readers: smtpd does not read the 3.8 parameter
    assert named(found, "change_detected")[0].data["stale_processes"] == []
    assert state.processes["postfix/smtpd/101"].release == "vintage"


def test_a_state_without_releases_writes_no_release_field() -> None:
    state, _ = _edit_under("", "smtpd_banner")
    assert "release" not in json.loads(to_json(state))["processes"]["postfix/smtpd/101"]
    assert "version" not in json.loads(to_json(state))["master"]["postfix"]
