"""The compiled catalogue: consistency with the contract, dispatch, fallbacks."""

from __future__ import annotations

import re

import pytest

from pfwatch.grammars.maillog_catalogue import CATALOGUE, POSTFIX_PROGRAMS, Row
from pfwatch.maillog.classify import ACTIVITY_KIND, ACTIVITY_PATTERN, UNRECOGNIZED, Classifier

CONTRACT_KINDS = [
    "master_started",
    "master_reloaded",
    "master_stopped",
    "master_exit_time",
    "script_starting",
    "script_stopping",
    "script_refreshing",
    "script_aborting",
    "script_waiting",
    "script_stopping_force",
    "child_exit_status",
    "child_killed",
    "child_stopped",
    "bad_command_startup",
    "process_limit",
    "process_limit_hint",
    "inet_interfaces_ignored",
    "parameter_change_ignored",
    "parameter_change_values",
    "parameter_change_hint",
    "duplicate_master_entry",
    "status_ignored",
    "table_changed",
    "table_changed_draining",
    "database_older",
    "table_unavailable",
    "open_database_error",
    "verbose_idle_timeout",
    "verbose_master_disconnect",
    "verbose_retire",
    "verbose_process_generation",
    "verbose_master_notify",
    "verbose_connection_established",
    "verbose_connection_closed",
    "verbose_daemon_started",
    "verbose_trace",
    "diagnostic",
    "session_connect",
    "session_disconnect",
    "session_abort",
    "postscreen_connect",
    "postscreen_pass",
    "postscreen_disconnect",
    "postscreen_verdict",
    "noqueue",
    "message_activity",
    "anvil_statistics",
    "scache_statistics",
    "cache_cleanup",
]

CONTRACT_FIELDS = {
    "master_started": {"version", "config_dir"},
    "child_exit_status": {"path", "child_pid", "status", "child_daemon"},
    "child_killed": {"path", "child_pid", "signal", "child_daemon"},
    "table_changed": {"table", "type", "path"},
    "session_disconnect": {"client", "commands"},
    "session_abort": {"reason", "after", "client"},
    "process_limit": {"service_name", "limit"},
    "message_activity": {"queue_id"},
    "diagnostic": {"severity", "text"},
    "cache_cleanup": {"mode"},
}


def test_every_contract_kind_is_in_the_catalogue() -> None:
    kinds = {row.kind for row in CATALOGUE}
    assert set(CONTRACT_KINDS) <= kinds, sorted(set(CONTRACT_KINDS) - kinds)
    assert UNRECOGNIZED not in kinds


@pytest.mark.parametrize(("kind", "fields"), sorted(CONTRACT_FIELDS.items()))
def test_contract_fields(kind: str, fields: set[str]) -> None:
    for row in CATALOGUE:
        if row.kind == kind:
            assert fields <= set(row.fields), row


@pytest.mark.parametrize("row", CATALOGUE, ids=[row.kind for row in CATALOGUE])
def test_rows_are_well_formed(row: Row) -> None:
    assert sorted(re.compile(row.pattern).groupindex) == sorted(row.fields)
    assert re.fullmatch(r"(src/[\w/.-]+\.c|conf/postfix-script):\d+", row.source)
    for daemon in row.daemons:
        assert daemon == "*" or daemon in POSTFIX_PROGRAMS
    for word in row.first_words:
        assert " " not in word and not re.match(ACTIVITY_PATTERN, word + " "), word


def test_mismatched_fields_are_refused() -> None:
    bad = Row("x", ("*",), ("x",), r"x (?P<a>\d+)", ("b",), "src/x.c:1")
    with pytest.raises(ValueError, match="differ"):
        Classifier((bad,))


CLASSIFIER = Classifier()


@pytest.mark.parametrize(
    ("daemon", "message", "kind", "fields"),
    [
        ("smtpd", "connect from a[192.0.2.1]", "session_connect", {"client": "a[192.0.2.1]"}),
        (
            "smtp",
            "connect to a[192.0.2.1]:25: Connection refused",
            "delivery_connect_error",
            {"peer": "a[192.0.2.1]:25", "text": "Connection refused"},
        ),
        (
            "master",
            "daemon started -- version 3.5.0",
            "master_started",
            {"version": "3.5.0", "config_dir": ""},
        ),
        ("master", "daemon started", "verbose_daemon_started", {}),
        ("pickup", "daemon started", "verbose_daemon_started", {}),
        (
            "smtpd",
            "disconnect from a[192.0.2.1]",
            "session_disconnect",
            {"client": "a[192.0.2.1]", "stats": "", "commands": ""},
        ),
        (
            "smtpd",
            "disconnect from a[192.0.2.1] ehlo=1 commands=1/2",
            "session_disconnect",
            {"client": "a[192.0.2.1]", "stats": "ehlo=1 commands=1/2", "commands": "1/2"},
        ),
        ("qmgr", "3A1973E542: removed", ACTIVITY_KIND, {"queue_id": "3A1973E542"}),
        ("smtpd", "warning:", "diagnostic", {"severity": "warning", "text": ""}),
        ("cleanup", "statistics: whatever", "verbose_trace", {}),
        ("smtpd", "Useless Payload", UNRECOGNIZED, {}),
        ("smtpd", "", UNRECOGNIZED, {}),
        (
            "newdaemon",
            "table hash:/x has changed -- restarting",
            "table_changed",
            {"table": "hash:/x", "type": "hash", "path": "/x"},
        ),
    ],
)
def test_classification(daemon: str, message: str, kind: str, fields: dict[str, str]) -> None:
    assert CLASSIFIER.classify(daemon, message) == (kind, fields)


def test_daemon_specific_rows_stay_with_their_daemon() -> None:
    # master's lines logged by another program are not master events
    assert CLASSIFIER.classify("smtpd", "terminating on signal 15")[0] == UNRECOGNIZED
    assert CLASSIFIER.classify("master", "terminating on signal 15")[0] == "master_stopped"
