"""From the log alone, a cleanup connected to an smtpd transaction open at an edit.

smtpd connects to cleanup when it opens the queue file (its ``QUEUEID: client=`` line,
src/smtpd/smtpd.c mail_open_stream); the cleanup logs its first line only at the end of
DATA. A cleanup-read edit made in between must not be declared live at once: the
cleanup may predate it though nothing of it is in the log yet. Its first line settles
that (it is then known, born by the ``client=`` line, and stale); so does the session's
end without one.
"""

from __future__ import annotations

import pytest

from pfwatch.core.fold import run
from pfwatch.core.state import EngineState, Settings
from pfwatch.events import Finding
from pfwatch.testing.streams import StreamBuilder, make_facts

T0 = 1_700_000_000.0
FACTS = make_facts({"header_checks": "pcre:/etc/postfix/header_checks"}, max_idle=10)
CLIENT = "client[127.0.0.1]"


def begin() -> StreamBuilder:
    """A log that began long before (no unknown pre-existing processes)."""
    b = StreamBuilder(T0 - 100)
    b.snapshot(FACTS)
    b.message("qmgr", 21, "OLD")
    return b.at(T0)


def named(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.name == name]


def transaction_at_edit() -> tuple[EngineState, list[Finding], StreamBuilder]:
    """smtpd[30] opens queue file AAA at T0+1; header_checks is edited at T0+2."""
    b = begin()
    b.log("session_connect", "smtpd", 30, client=CLIENT)
    b.at(T0 + 1).message("smtpd", 30, "AAA")
    b.at(T0 + 2).change(FACTS, parameters=["header_checks"])
    state = EngineState(settings=Settings(max_idle=10))
    found = run(state, b.events)
    return state, found, b


def test_an_open_transaction_holds_a_cleanup_edit() -> None:
    state, found, _ = transaction_at_edit()
    assert named(found, "change_live") == []
    (entry,) = state.changes["c1"].unseen
    assert (entry.daemon, entry.queue_id, entry.resolved_at) == ("cleanup", "AAA", None)
    assert "smtpd[30] opened queue file AAA" in entry.why


def test_the_cleanup_first_line_after_the_edit_is_stale_and_holds_the_change() -> None:
    state, _, b = transaction_at_edit()
    b.at(T0 + 4).message("cleanup", 40, "AAA")
    b.at(T0 + 4.5).log("session_disconnect", "smtpd", 30, client=CLIENT, commands="5")
    found = run(state, b.events[-2:])
    assert named(found, "change_live") == []
    change = state.changes["c1"]
    assert change.stale == ["postfix/cleanup/40"]
    assert state.processes["postfix/cleanup/40"].born_at == pytest.approx(T0 + 1)
    assert change.unseen[0].resolved_at == pytest.approx(T0 + 4)
    # cleanup[40] exits max_idle after its message: then the edit is live
    (live,) = named(run(state, [*b.tick(T0 + 20).events[-1:]]), "change_live")
    assert live.data["made_live_by"] == "postfix/cleanup/40"
    assert live.data["live_at"] == pytest.approx(T0 + 4 + 10 + 1)


def test_a_session_ending_without_a_cleanup_line_settles_the_hold() -> None:
    state, _, b = transaction_at_edit()
    b.at(T0 + 3).log("session_abort", "smtpd", 30, client=CLIENT)
    found = run(state, [*b.events[-1:], *b.tick(T0 + 8).events[-1:]])
    (live,) = named(found, "change_live")
    assert live.data["live_at"] == pytest.approx(T0 + 3)


def test_a_transaction_whose_cleanup_already_logged_holds_nothing_unseen() -> None:
    b = begin()
    b.log("session_connect", "smtpd", 30, client=CLIENT)
    b.at(T0 + 1).message("smtpd", 30, "AAA").message("cleanup", 40, "AAA")
    b.at(T0 + 2).change(FACTS, parameters=["header_checks"])
    state = EngineState(settings=Settings(max_idle=10))
    run(state, b.events)
    change = state.changes["c1"]
    assert change.unseen == []
    assert change.stale == ["postfix/cleanup/40"]


def test_a_transaction_opened_after_the_edit_holds_nothing() -> None:
    b = begin()
    b.at(T0 + 2).change(FACTS, parameters=["header_checks"])
    b.at(T0 + 3).log("session_connect", "smtpd", 30, client=CLIENT)
    b.message("smtpd", 30, "AAA")
    state = EngineState(settings=Settings(max_idle=10))
    found = run(state, b.events)
    assert state.changes["c1"].unseen == []
    assert len(named(found, "change_live")) == 1
