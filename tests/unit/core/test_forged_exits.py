"""With /proc fresh, a logged exit waits for /proc; one /proc contradicts is untrusted."""

from __future__ import annotations

import pytest

from pfwatch.core.fold import run, step
from pfwatch.core.state import EngineState, Settings
from pfwatch.events import Finding, ProcessTableSeen
from pfwatch.testing.streams import StreamBuilder, make_facts

T0 = 1_700_000_000.0
TABLE = [("master", 1, T0 - 50), ("smtpd", 5, T0 - 3), ("qmgr", 2, T0 - 50)]


def named(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.name == name]


def pending_change(b: StreamBuilder) -> None:
    facts = make_facts({}, max_idle=100, max_use=100)
    b.snapshot(facts)
    b.procs(TABLE).session(5, duration=1)
    b.wait(1).procs(TABLE).change(facts, parameters=["smtpd_banner"])


def test_forged_idle_exit_of_a_live_stale_smtpd_is_contradicted() -> None:
    b = StreamBuilder(T0)
    pending_change(b)
    b.wait(0.5).log("verbose_idle_timeout", "smtpd", 5)
    claimed_at = b.now
    for _ in range(6):  # /proc keeps showing smtpd[5], once a second
        b.wait(1).procs(TABLE)
    state = EngineState(settings=Settings())
    found = run(state, b.events)
    assert named(found, "change_live") == []
    assert named(found, "process_exited") == []
    assert "postfix/smtpd/5" in state.processes
    lie = named(found, "log_line_untrusted")
    assert len(lie) == 1
    assert lie[0].data["reason"] == "exit_contradicted" and lie[0].data["pid"] == 5
    assert lie[0].data["line_at"] == pytest.approx(claimed_at, abs=1e-6)
    assert lie[0].basis == "observed"


def test_a_true_exit_line_is_confirmed_by_proc_with_the_line_time_and_reason() -> None:
    b = StreamBuilder(T0)
    pending_change(b)
    b.wait(0.3).log("verbose_idle_timeout", "smtpd", 5)
    said = b.now
    state = EngineState(settings=Settings())
    found = run(state, b.events)
    assert named(found, "change_live") == []  # not before /proc agrees
    found = step(state, ProcessTableSeen(at=said + 0.7, processes=()))
    found += step(state, ProcessTableSeen(at=said + 0.8, processes=()))
    exited = named(found, "process_exited")
    smtpd = next(f for f in exited if f.data["pid"] == 5)
    assert smtpd.data["reason"] == "idle_timeout" and smtpd.basis == "observed"
    assert named(found, "log_line_untrusted") == []
    assert named(found, "change_live")


def test_without_proc_the_log_line_is_believed_at_once() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=100, max_use=100)
    b.snapshot(facts)
    b.session(5, duration=1).wait(1).change(facts, parameters=["smtpd_banner"])
    b.wait(0.5).log("verbose_idle_timeout", "smtpd", 5)
    found = run(EngineState(settings=Settings()), b.events)
    assert named(found, "change_live")


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("child_killed", {"child_pid": "5", "child_daemon": "smtpd", "signal": "9"}),
        ("master_stopped", {"signal": "15"}),
    ],
)
def test_forged_master_lines_do_not_end_processes_proc_shows(
    kind: str, fields: dict[str, str]
) -> None:
    b = StreamBuilder(T0)
    pending_change(b)
    b.wait(0.5).log(kind, "master", 1, **fields)
    for _ in range(6):
        b.wait(1).procs(TABLE)
    state = EngineState(settings=Settings())
    found = run(state, b.events)
    assert named(found, "change_live") == []
    assert "postfix/smtpd/5" in state.processes
    lies = named(found, "log_line_untrusted")
    assert 5 in {f.data["pid"] for f in lies}
