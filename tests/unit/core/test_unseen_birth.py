"""A process born after the last /proc poll and before an edit is stale, though unseen.

/proc is polled about once a second. A daemon that starts between a poll and an edit, and
has not logged yet, is known to nobody when the edit is folded; the first poll after the
edit lists it with a start time before the edit. Until that poll has been folded, "nothing
stale is running" cannot be concluded.
"""

from __future__ import annotations

import pytest

from pfwatch.core.fold import run, step
from pfwatch.core.state import EngineState, Settings
from pfwatch.events import Finding, LogEvent, ProcessInfo, ProcessTableSeen, Tick
from pfwatch.testing.streams import StreamBuilder, make_facts

T0 = 1_700_000_000.0
BASE = [("master", 1, T0 - 50), ("qmgr", 2, T0 - 50), ("pickup", 3, T0 - 50)]


def named(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.name == name]


def table(at: float, *extra: tuple[str, int, float]) -> ProcessTableSeen:
    rows = [*BASE, *extra]
    return ProcessTableSeen(
        at, tuple(ProcessInfo(pid, d, "", "postfix", born) for d, pid, born in rows)
    )


def test_a_process_born_between_the_last_poll_and_the_edit_keeps_the_change_pending() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=100, max_use=100)
    b.snapshot(facts)
    b.procs(BASE)
    b.wait(0.8).change(facts, parameters=["smtpd_banner"])  # smtpd[7] born at T0 + 0.5
    edited = b.now
    state = EngineState(settings=Settings())
    found = run(state, [*b.events, Tick(edited + 0.1)])
    assert named(found, "change_live") == []  # the next poll may show a stale process
    found = step(state, table(T0 + 1.0, ("smtpd", 7, T0 + 0.5)))
    assert named(found, "change_live") == []
    (change,) = state.changes.values()
    assert change.stale == ["postfix/smtpd/7"]
    found = step(state, table(T0 + 2.0))  # smtpd[7] gone
    (live,) = named(found, "change_live")
    assert live.data["live_at"] == pytest.approx(T0 + 2.0, abs=1e-6)


def test_with_no_birth_since_the_poll_the_first_later_poll_confirms_the_edit_at_its_time() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=100, max_use=100)
    b.snapshot(facts)
    b.procs(BASE)
    b.wait(0.8).change(facts, parameters=["smtpd_banner"])
    edited = b.now
    state = EngineState(settings=Settings())
    assert named(run(state, b.events), "change_live") == []
    (live,) = named(step(state, table(T0 + 1.0)), "change_live")
    assert live.data["live_at"] == pytest.approx(edited, abs=1e-6)


def test_a_use_limit_exit_the_log_implies_is_confirmed_by_one_later_poll() -> None:
    """check folds one /proc poll: a stale smtpd whose max_use exit the log implies (no
    exit line) and that the poll does not list is gone; no log-delay margin to wait."""
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=100, max_use=2)
    b.snapshot(facts)
    b.session(7, duration=1).wait(0.5)
    b.change(facts, parameters=["smtpd_banner"])
    b.wait(0.5).session(7, duration=0.5)  # its second use: it exits after this session
    exit_implied = b.now
    state = EngineState(settings=Settings())
    found = run(state, b.events)
    assert named(found, "change_live") == []
    (change,) = state.changes.values()
    assert change.stale == ["postfix/smtpd/7"]
    # the one poll, before the log-delay margin has passed
    found = step(state, table(exit_implied + 0.5))
    (live,) = named(found, "change_live")
    assert exit_implied <= live.data["live_at"] <= exit_implied + 0.5


def test_without_a_poll_the_implied_exit_still_waits_for_the_log_delay_margin() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=100, max_use=2)
    b.snapshot(facts)
    b.session(7, duration=1).wait(0.5)
    b.change(facts, parameters=["smtpd_banner"])
    b.wait(0.5).session(7, duration=0.5)
    exit_implied = b.now
    state = EngineState(settings=Settings())
    found = run(state, [*b.events, Tick(exit_implied + 0.5)])
    assert named(found, "change_live") == []


def edited_then_logged() -> EngineState:
    """The edit at T0+10.6; smtpd[8] then logs its first line, stamped T0+10 (the second of
    the edit, so it may predate it): taken as stale."""
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=100, max_use=100)
    b.snapshot(facts)
    b.procs(BASE)
    b.at(T0 + 10.6).change(facts, parameters=["smtpd_banner"])
    line = LogEvent(
        at=T0 + 10,
        kind="session_connect",
        program="postfix/smtpd",
        instance="postfix",
        service="",
        daemon="smtpd",
        pid=8,
        fields={"client": "c[127.0.0.1]"},
    )
    state = EngineState(settings=Settings())
    run(state, [*b.events, line])
    (change,) = state.changes.values()
    assert change.stale == ["postfix/smtpd/8"]
    return state


def test_a_poll_dating_a_start_after_the_edit_drops_a_process_its_log_stamp_made_stale() -> None:
    state = edited_then_logged()
    step(state, table(T0 + 11.0, ("smtpd", 8, T0 + 10.8)))
    (change,) = state.changes.values()
    assert change.stale == []
    assert state.processes["postfix/smtpd/8"].born_at == pytest.approx(T0 + 10.8)


def test_a_poll_dating_a_start_before_the_edit_keeps_it_stale() -> None:
    state = edited_then_logged()
    step(state, table(T0 + 11.0, ("smtpd", 8, T0 + 10.2)))
    (change,) = state.changes.values()
    assert change.stale == ["postfix/smtpd/8"]
    assert state.processes["postfix/smtpd/8"].born_at == pytest.approx(T0 + 10.2)
