"""A session line that reaches the engine after the table edit it predates.

The file watcher reports an edit within a tenth of a second; the log line of a session
opened just before it can come later (postlogd or journald are busy). The smtpd serving
that session keeps the old tables until the session ends (it checks them only before the
next client), so the late line must make it stale, as if it had been folded first; a
session opened after the edit must not.
"""

from __future__ import annotations

from pfwatch.core.fold import run
from pfwatch.core.state import EngineState
from pfwatch.events import Finding
from pfwatch.testing.streams import StreamBuilder, make_facts, table_edit

T0 = 1_700_000_000.0
ACCESS = "hash:/etc/postfix/access"
FACTS = make_facts({"smtpd_sender_restrictions": f"check_sender_access {ACCESS}"}, max_idle=60)
CLIENT = "client[127.0.0.1]"
PROCS = [("master", 1, T0 - 50), ("qmgr", 2, T0 - 50), ("pickup", 3, T0 - 50)]


def named(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.name == name]


def late_connect(connected_at: float) -> tuple[EngineState, list[Finding], StreamBuilder]:
    """smtpd[7] (born T0 - 10, idle) connects at ``connected_at``; the access table is
    rebuilt at T0 + 1; the connect line is folded only after the edit."""
    b = StreamBuilder(T0)
    b.snapshot(FACTS).procs([*PROCS, ("smtpd", 7, T0 - 10)])
    b.at(T0 + 1).change(
        FACTS,
        files=["/etc/postfix/access.db"],
        tables=[table_edit(ACCESS, ["smtpd_sender_restrictions"], source_changed=False)],
    )
    line = StreamBuilder(connected_at).log("session_connect", "smtpd", 7, client=CLIENT)
    state = EngineState()
    found = run(state, [*b.events, *line.events])
    return state, found, b.at(max(b.now, connected_at))


def test_a_session_opened_before_the_edit_keeps_its_smtpd_stale_until_it_ends() -> None:
    state, found, b = late_connect(T0 + 0.5)
    change = state.changes["c1"]
    assert change.stale == ["postfix/smtpd/7"]
    assert change.until_session_end == ["postfix/smtpd/7"]
    assert named(found, "change_live") == []
    (update,) = named(found, "change_prediction_updated")
    assert update.data["stale_processes"] == ["smtpd[7]"]
    b.at(T0 + 5).log("session_disconnect", "smtpd", 7, client=CLIENT)
    b.procs([*PROCS, ("smtpd", 7, T0 - 10)])
    (live,) = named(run(state, b.events[-2:]), "change_live")
    assert live.data["made_live_by"] == "postfix/smtpd/7"


def test_a_session_opened_after_the_edit_is_served_with_the_new_table() -> None:
    state, _, _ = late_connect(T0 + 1.5)
    assert state.changes["c1"].stale == []
