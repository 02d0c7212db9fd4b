"""Which log lines are believed: the journal's trusted fields and /proc's word on pids."""

from __future__ import annotations

from typing import Any

import pytest

from pfwatch.events import LogEvent
from pfwatch.service.log_trust import journal_verdict, proc_verdict, untrusted_finding
from pfwatch.sinks.metrics import UNTRUSTED_REASONS

UIDS = frozenset({"0", "107"})
SMTPD = LogEvent(100.0, "verbose_idle_timeout", "postfix/smtpd", "postfix", "smtp", "smtpd", 4242)


def record(**fields: Any) -> dict[str, Any]:
    base = {
        "MESSAGE": "idle timeout -- exiting",
        "SYSLOG_IDENTIFIER": "postfix/smtpd",
        "SYSLOG_PID": "4242",
        "_PID": "4242",
        "_UID": "107",
        "_COMM": "smtpd",
        "_EXE": "/usr/lib/postfix/sbin/smtpd",
        "_SYSTEMD_UNIT": "postfix@-.service",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def test_a_line_postfix_wrote_is_believed() -> None:
    assert journal_verdict(record(), SMTPD, UIDS) is None
    assert journal_verdict(record(_UID="0", _COMM="master"), SMTPD, UIDS) is None
    # no systemd unit (a container without systemd) is no reason to doubt
    assert journal_verdict(record(_SYSTEMD_UNIT=None), SMTPD, UIDS) is None


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        # logger -t 'postfix/smtpd[4242]' by a user: another pid, program and uid
        ({"_PID": "999", "_COMM": "logger", "_EXE": "/usr/bin/logger", "_UID": "1000"}, "pid"),
        # the pid matches by luck, but logger wrote it
        ({"_COMM": "logger", "_EXE": "/usr/bin/logger"}, "not a Postfix daemon"),
        # postlog is Postfix's, but anyone may run it
        ({"_COMM": "postlog", "_EXE": "/usr/sbin/postlog"}, "not a Postfix daemon"),
        ({"_UID": "1000"}, "uid 1000"),
        ({"_SYSTEMD_UNIT": "session-3.scope"}, "session-3.scope"),
    ],
)
def test_lines_someone_else_wrote_are_not(fields: dict[str, Any], why: str) -> None:
    verdict = journal_verdict(record(**fields), SMTPD, UIDS)
    assert verdict is not None and verdict[0] == "journal_writer" and why in verdict[1]


def test_delivery_agents_may_log_as_the_recipient() -> None:
    local = LogEvent(1.0, "x", "postfix/local", "postfix", "local", "local", 4242)
    assert journal_verdict(record(_UID="1000", _COMM="local"), local, UIDS) is None
    assert journal_verdict(record(_UID="1000", _COMM="smtpd"), SMTPD, UIDS) is not None


def test_records_without_trusted_fields_and_user_commands_pass() -> None:
    bare = {"MESSAGE": "x", "SYSLOG_IDENTIFIER": "postfix/smtpd", "SYSLOG_PID": "4242"}
    assert journal_verdict(bare, SMTPD, UIDS) is None
    sendmail = LogEvent(1.0, "x", "postfix/sendmail", "postfix", "sendmail", "sendmail", 77)
    assert journal_verdict(record(_UID="1000", _COMM="sendmail"), sendmail, UIDS) is None
    script = LogEvent(1.0, "x", "postfix/postfix-script", "postfix", "", "postfix-script", 9)
    assert journal_verdict(record(_UID="0", _COMM="postfix-script"), script, UIDS) is None
    assert journal_verdict(record(_UID="1000", _COMM="postfix-script"), script, UIDS)


class Scanner:
    visible = True

    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked: list[tuple[int, bool]] = []

    def vouches(
        self, pid: int, at: float, slack: float = 1.0, *, master: bool = False
    ) -> bool | None:
        self.asked.append((pid, master))
        return self.answer


def test_proc_verdict() -> None:
    assert proc_verdict(SMTPD, Scanner(True), 1.0) is None
    assert proc_verdict(SMTPD, Scanner(None), 1.0) is None  # /proc cannot tell
    verdict = proc_verdict(SMTPD, Scanner(False), 1.0)
    assert verdict is not None and verdict[0] == "pid_not_postfix"
    master = LogEvent(1.0, "reload", "postfix/master", "postfix", "", "master", 5)
    scanner = Scanner(False)
    assert proc_verdict(master, scanner, 1.0) is not None
    assert scanner.asked == [(5, True)]


def test_untrusted_finding_names_a_counted_reason() -> None:
    finding = untrusted_finding(SMTPD, "pid_not_postfix", "why")
    assert finding.name == "log_line_untrusted" and finding.data["pid"] == 4242
    assert finding.data["reason"] in UNTRUSTED_REASONS
