"""Which log lines show a request to trivial-rewrite, and when its inferred exit is due.

qmgr resolves when a message enters the active queue (its first line for the queue id);
its later lines and the delivery agents' lines ask nothing, unless qmgr's lines are
missing (then a delivery line stands in, later than the real request). A request stamped
in or after the whole second in which the assumed trivial-rewrite's idle timer is due went
to a new one (Postfix timers have whole-second deadlines and run before I/O events).
"""

from __future__ import annotations

import pytest

from pfwatch.core.fold import run
from pfwatch.core.state import EngineState, Settings
from pfwatch.testing.streams import StreamBuilder, make_facts

T0 = 1_700_000_000.0


def rewriters(b: StreamBuilder) -> tuple[EngineState, list[float], list[float | None]]:
    state = EngineState(settings=Settings(max_idle=10))
    run(state, b.events)
    gone = [p for p in state.history if p.daemon == "trivial-rewrite"]
    alive = [p for p in state.processes.values() if p.daemon == "trivial-rewrite"]
    return state, [p.exited_at or 0.0 for p in gone], [p.last_activity_at for p in alive]


def start() -> StreamBuilder:
    b = StreamBuilder(T0)
    b.snapshot(make_facts({}, max_idle=10, max_use=100))
    return b


def test_qmgr_removed_line_is_no_request() -> None:
    b = start().message("cleanup", 20, "AAA").message("qmgr", 21, "AAA")
    b.wait(3).message("smtp", 22, "AAA").message("qmgr", 21, "AAA")  # sent, removed
    b.tick(T0 + 5 + 10 + 1 + 2.1)
    _state, gone, alive = rewriters(b)
    assert not alive
    assert gone == [pytest.approx(T0 + 5 + 10 + 0.5, abs=1e-3)]


def test_qmgr_line_after_a_long_pause_is_a_new_active_queue_pass() -> None:
    b = start().message("qmgr", 21, "AAA").wait(2).message("smtp", 22, "AAA")
    b.wait(100).message("qmgr", 21, "AAA")  # back from the deferred queue
    _state, _gone, alive = rewriters(b)
    assert alive == [pytest.approx(T0 + 102, abs=1e-3)]


def test_delivery_line_stands_in_when_qmgr_lines_are_missing() -> None:
    b = start().message("smtp", 22, "BBB")
    b.wait(2).message("smtp", 22, "CCC")
    _state, gone, alive = rewriters(b)
    assert not gone
    assert alive == [pytest.approx(T0 + 2, abs=1e-3)]


def test_smtp_client_alone_never_proves_a_request_after_qmgr_resolved() -> None:
    b = start().message("qmgr", 21, "AAA").wait(4).message("smtp", 22, "AAA")
    state, _gone, alive = rewriters(b)
    assert alive == [pytest.approx(T0, abs=1e-3)]
    assert list(state.trackers["postfix"].clients) == ["postfix/qmgr/21"]


def test_request_after_the_latest_possible_exit_goes_to_a_new_process() -> None:
    # last request T0; clients let go at T0+5; exit in [T0+15, T0+16): a request stamped
    # T0+16 (before the 2 s margin passed) reached a new trivial-rewrite
    b = start().message("qmgr", 21, "AAA").at(T0 + 16).message("qmgr", 21, "BBB")
    state, gone, alive = rewriters(b)
    assert gone == [pytest.approx(T0 + 15.5, abs=1e-3)]
    assert alive == [pytest.approx(T0 + 16, abs=1e-3)]
    old = next(p for p in state.history if p.daemon == "trivial-rewrite")
    assert old.exit_latest == pytest.approx(T0 + 16, abs=1e-3)
    assert "a new process served it" in old.exit_note


def test_request_in_the_second_the_idle_timer_is_due_goes_to_a_new_process() -> None:
    # the idle timer is due in the whole second T0+15 (events.c: whole-second timers, run
    # before the I/O events): a connection in that second wakes the old process, which
    # exits first; the exit is bounded by the deadline and the request, not pushed
    b = start().message("qmgr", 21, "AAA").at(T0 + 15).message("qmgr", 21, "BBB")
    state, gone, alive = rewriters(b)
    assert gone == [pytest.approx(T0 + 15.5, abs=1e-3)]
    assert alive == [pytest.approx(T0 + 15, abs=1e-3)]
    old = next(p for p in state.history if p.daemon == "trivial-rewrite")
    assert old.exit_latest == pytest.approx(T0 + 16, abs=1e-3)


def test_request_in_the_second_before_the_timer_is_due_keeps_the_old_process() -> None:
    b = start().message("qmgr", 21, "AAA").at(T0 + 14).message("qmgr", 21, "BBB")
    _state, gone, alive = rewriters(b)
    assert not gone
    assert alive == [pytest.approx(T0 + 14, abs=1e-3)]


def test_sub_second_stamps_bound_the_exit_by_the_request() -> None:
    # with sub-second stamps the timer is still due in the whole second: a request at
    # T0+15.2, before let go + max_idle = T0+15.7, finds the old process exiting
    b = StreamBuilder(T0 + 0.7)
    b.snapshot(make_facts({}, max_idle=10, max_use=100))
    b.message("qmgr", 21, "AAA").at(T0 + 15.2).message("qmgr", 21, "BBB")
    _state, gone, alive = rewriters(b)
    assert gone == [pytest.approx(T0 + 15.2, abs=1e-3)]
    assert alive == [pytest.approx(T0 + 15.2, abs=1e-3)]
    b = StreamBuilder(T0 + 0.7)
    b.snapshot(make_facts({}, max_idle=10, max_use=100))
    b.message("qmgr", 21, "AAA").at(T0 + 14.9).message("qmgr", 21, "BBB")
    _state, gone, alive = rewriters(b)
    assert not gone


def test_disconnect_counts_as_a_request_only_after_several_recipients() -> None:
    b = start().session(30, duration=2, queue_id="AAA")  # client= at T0+1, ends T0+2
    b.log("session_connect", "smtpd", 31, client="c[127.0.0.1]")
    b.wait(1).log("session_disconnect", "smtpd", 31, client="c", stats="ehlo=1 quit=1")
    state, _gone, _alive = rewriters(b)
    assert "postfix/smtpd/31" not in state.trackers["postfix"].clients
    b.log("session_connect", "smtpd", 32, client="c[127.0.0.1]")
    b.wait(1).log("session_disconnect", "smtpd", 32, client="c", stats="rcpt=2/3 quit=1")
    state, _gone, _alive = rewriters(b)
    assert state.trackers["postfix"].clients["postfix/smtpd/32"][1] == T0 + 4


def test_idle_processes_waiting_for_the_accept_lock_hold_their_connection() -> None:
    # two idle smtpd: the one idle longer holds the accept lock and exits at its idle
    # deadline; only then can the other run its ipc_idle timer (single_server.c:810-819)
    b = start().session(30, duration=2, queue_id="AAA")  # ends T0+2
    b.session(31, duration=2, queue_id="BBB")  # ends T0+4
    b.tick(T0 + 9.5)
    state, _gone, _alive = rewriters(b)
    clients = state.trackers["postfix"].clients
    # smtpd[30] asked at T0+1 and let go at T0+6; smtpd[31] waits for T0+2+10
    assert "postfix/smtpd/30" not in clients and "postfix/smtpd/31" in clients
    # let go in the second T0+12 (a timer due in whole seconds): certain only once it ended
    b.tick(T0 + 12.5)
    state, _gone, _alive = rewriters(b)
    assert "postfix/smtpd/31" in state.trackers["postfix"].clients
    b.tick(T0 + 13.0)
    state, _gone, _alive = rewriters(b)
    assert "postfix/smtpd/31" not in state.trackers["postfix"].clients


def use_limit(second: float) -> tuple[list[float], list[float | None]]:
    # max_use 1: trivial-rewrite exits the moment qmgr lets go (ipc_idle 5 s after T0,
    # a timer due in the whole second T0+5, src/master/multi_server.c:919)
    b = StreamBuilder(T0)
    b.snapshot(make_facts({}, max_idle=10, max_use=1))
    b.message("qmgr", 21, "AAA").at(second).message("qmgr", 21, "BBB")
    _state, gone, alive = rewriters(b)
    return gone, alive


def test_request_in_the_second_a_use_limited_process_may_exit_keeps_it() -> None:
    # qmgr lets go somewhere in the second T0+5 and so may a request stamped T0+5 come:
    # from the log either came first; the old process is taken to serve it, so the
    # inferred exit is never early (at worst one ipc_idle late)
    gone, alive = use_limit(T0 + 5)
    assert not gone
    assert alive == [pytest.approx(T0 + 5, abs=1e-3)]


def test_request_after_the_second_a_use_limited_process_exits_goes_to_a_new_one() -> None:
    gone, alive = use_limit(T0 + 6)
    assert gone == [pytest.approx(T0 + 5, abs=1e-3)]
    assert alive == [pytest.approx(T0 + 6, abs=1e-3)]
