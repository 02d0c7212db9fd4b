"""Issue 3 acceptance: a real Postfix's maillog read through the classifier, line for line.

One private Postfix (``-v`` smtpd, max_idle 4 s) is driven through SMTP sessions, a
``postmap`` rebuild of a hash table that smtpd uses in ``smtpd_client_restrictions``
(the idle smtpd logs ``table ... has changed -- restarting`` when the next connection
arrives) and a ``postfix reload``. Its maillog is then read through
:class:`~pfwatch.maillog.reader.LogClassifier` and checked: every line is a Postfix line
and every one is recognized; each line yields exactly one event (with its line number);
lines with an unambiguous text get the kind that text means; the lifecycle kinds of each
smtpd process come in the order the scenario dictates; and the coalesced stream (what
``pfwatch explain`` and ``watch`` read) folds to the same findings as the per-line one.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from pfwatch.core.fold import run
from pfwatch.core.state import EngineState, Settings
from pfwatch.events import LogEvent, Tick
from pfwatch.instance.local import PostfixInstance
from pfwatch.maillog.reader import LogClassifier, iter_log_events

pytestmark = pytest.mark.postfix

TABLE = "client_access"
MAX_IDLE = 4
EXITS = ("table_changed", "verbose_idle_timeout", "verbose_master_disconnect", "verbose_retire")
SESSION = [
    "verbose_connection_established",
    "verbose_master_notify",
    "session_connect",
    "session_disconnect",
    "verbose_master_notify",
    "verbose_connection_closed",
]
"""One client connection of a -v smtpd (src/master/single_server.c:280-306)."""
LIFECYCLE = frozenset({*EXITS, *SESSION, "verbose_process_generation", "session_abort"})
"""The kinds whose order per smtpd process the scenario fixes."""

# Independent oracle: a text that can mean one kind only (the line's message part).
ORACLE = (
    (re.compile(r"^connect from "), "session_connect"),
    (re.compile(r"^disconnect from "), "session_disconnect"),
    (re.compile(r"^table hash:\S+ has changed -- restarting$"), "table_changed"),
    (re.compile(r"^idle timeout -- exiting$"), "verbose_idle_timeout"),
    (re.compile(r"^master disconnect -- exiting$"), "verbose_master_disconnect"),
    (re.compile(r"^reload -- version "), "master_reloaded"),
    (re.compile(r"^daemon started -- version "), "master_started"),
    (re.compile(r"^refreshing the Postfix mail system$"), "script_refreshing"),
    (re.compile(r"^starting the Postfix mail system$"), "script_starting"),
    (re.compile(r"^process generation: \d+ \(\d+\)$"), "verbose_process_generation"),
    (re.compile(r"^master_notify: status [01]$"), "verbose_master_notify"),
    (re.compile(r"^connection established$"), "verbose_connection_established"),
    (re.compile(r"^connection closed$"), "verbose_connection_closed"),
    (re.compile(r"^connect to subsystem "), "verbose_trace"),
    (re.compile(r"^(?:Compiled|Run-time linked) against Berkeley DB"), "verbose_trace"),
    (re.compile(r"^[0-9A-F]{6,}: (?:client|message-id|from|to|removed)"), "message_activity"),
)
_LINE = re.compile(r"^\S+ +\d+ [\d:]+ \S+ (?P<tag>[^\[]+)\[(?P<pid>\d+)\]: (?P<msg>.*)$")


def _send(pf: PostfixInstance, n: int) -> str:
    return pf.send_mail(f"s{n}@client.pfwatch.test", f"r{n}@remote.pfwatch.test")


def _drive(pf: PostfixInstance) -> None:
    """Sessions, a reload that brings in the hash table, its rebuild, an idle exit."""
    pf.write_file(TABLE, "192.0.2.1 REJECT\n")
    pf.postmap(TABLE)
    pf.edit_main_cf(
        {"smtpd_client_restrictions": f"check_client_access hash:$config_directory/{TABLE}"}
    )
    time.sleep(2.1)  # main.cf cools down (src/util/dict.c), then the reload reads it
    pf.reload(wait=True)
    _send(pf, 1)  # a new smtpd opens the table
    _send(pf, 2)  # the same idle smtpd serves again
    time.sleep(1.1)  # Berkeley DB change detection has whole-second mtimes
    pf.write_file(TABLE, "192.0.2.1 REJECT\n192.0.2.2 REJECT\n")
    pf.postmap(TABLE)
    _send(pf, 3)  # the idle smtpd sees the change: "has changed -- restarting"
    since = pf.log_offset()
    pf.wait_for_log(r"has changed -- restarting", 10)
    pf.wait_for_log(r"smtpd\[\d+\]: idle timeout -- exiting", MAX_IDLE + 10, since=since)


@pytest.mark.postfix_options(max_idle=MAX_IDLE, verbose=["smtpd"])
def test_real_maillog_line_for_line(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    _drive(pf)
    log = Path(pf.maillog)
    lines = log.read_text(encoding="utf-8").splitlines()
    classifier = LogClassifier(keep_unrecognized=20)
    events = list(iter_log_events([str(log)], classifier))
    stats = classifier.stats

    assert stats.lines_unrecognized == 0, stats.unrecognized_samples
    assert stats.lines_total == stats.lines_postfix == stats.lines_recognized == len(lines)
    assert [event.line_no for event in events] == list(range(1, len(lines) + 1))

    per_pid: dict[tuple[str, int], list[str]] = {}
    hit: set[str] = set()
    for line, event in zip(lines, events, strict=True):
        parts = _LINE.match(line)
        assert parts is not None, line
        assert (event.program, event.pid) == (parts["tag"], int(parts["pid"])), line
        expected = next((kind for rx, kind in ORACLE if rx.match(parts["msg"])), None)
        if expected is not None:
            assert event.kind == expected, line
            hit.add(expected)
        if event.daemon == "smtpd" and event.kind in LIFECYCLE:
            per_pid.setdefault((event.program, event.pid), []).append(event.kind)
    missing = {kind for _, kind in ORACLE} - hit
    assert not missing, f"the scenario should exercise every oracle line: {missing}"

    kinds = [event.kind for event in events]
    assert kinds.count("master_reloaded") == 1
    assert kinds.count("script_refreshing") == 1
    assert kinds.index("script_refreshing") < kinds.index("master_reloaded")
    # every smtpd: its generation, whole sessions, then exactly one way out. On a loaded
    # machine the master may start a spare smtpd that never wins the accept lock
    # (src/master/master_avail.c, src/master/single_server.c): it has no session, and
    # the scenario's checks below are about the ones that served.
    served: dict[tuple[str, int], list[str]] = {}
    for process, sequence in per_pid.items():
        sessions = (len(sequence) - 2) // len(SESSION)
        expected_run = ["verbose_process_generation", *SESSION * sessions, sequence[-1]]
        assert sequence == expected_run, (process, sequence)
        assert sequence[-1] in EXITS, (process, sequence)
        if sessions:
            served[process] = sequence
    per_pid = served
    endings = {process: sequence[-1] for process, sequence in per_pid.items()}
    # the smtpd that served mails 1 and 2 left on the table rebuild, after two sessions
    rebuilt = [p for p, last in endings.items() if last == "table_changed"]
    assert len(rebuilt) == 1
    assert per_pid[rebuilt[0]].count("session_connect") == 2
    # the smtpd of the probe session was idle at the reload: "master disconnect"
    assert "verbose_master_disconnect" in endings.values()
    # the one that served mail 3 timed out idle
    assert "verbose_idle_timeout" in endings.values()

    coalesced = list(iter_log_events([str(log)], LogClassifier(coalesce_activity=True)))
    assert len(coalesced) < len(events)
    assert _findings(coalesced) == _findings(events)


def _findings(events: list[LogEvent]) -> list[object]:
    state = EngineState(settings=Settings(max_idle=MAX_IDLE))
    return list(run(state, [*events, Tick(at=events[-1].at + 3600)]))
