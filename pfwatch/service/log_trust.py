"""Whether a log line that looks like Postfix's may be believed.

Any local user can write ``postfix/smtpd[4242]: idle timeout -- exiting`` into the mail
log (``logger -p mail.info -t 'postfix/smtpd[4242]'``, Postfix's own ``postlog``, or a
write to a log file they can open). What vouches for a line, strongest first:

- the journal's trusted fields, which journald fills from the sender's credentials and a
  client cannot set: ``_PID`` (must be the pid in the tag, ``SYSLOG_PID``), ``_COMM`` or
  ``_EXE`` (a Postfix program), ``_UID`` (root or the Postfix user for daemons),
  ``_SYSTEMD_UNIT`` (when present, a ``postfix`` unit: not a login session's scope);
- /proc: the pid in the tag must be the watched master (for ``master`` lines) or one of
  its children, unless the pid is gone or was taken after the line was written (then
  /proc cannot tell). An exit a line announces counts only once /proc no longer shows
  the process (:mod:`pfwatch.core.observe`);
- neither: the line is taken as it is; events say ``evidence: "log only"``.

Inputs: a classified :class:`LogEvent`, the journal record's fields or a /proc scanner.
Outputs: None (believe it) or ``(reason, note)`` with reason one of
:data:`pfwatch.sinks.metrics.UNTRUSTED_REASONS`, and :func:`untrusted_finding`. Errors:
none.
"""

from __future__ import annotations

import contextlib
import pwd
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Protocol

from pfwatch.events import Finding, LogEvent
from pfwatch.knowledge.daemons import ALIASES, COMMANDS, DAEMONS

POSTFIX_PROGRAMS = frozenset(DAEMONS) | frozenset(ALIASES) | {"master", "postfix-script"}
"""Programs whose lines may drive the process model (``_COMM``/``_EXE`` basename)."""
SCRIPT_DAEMONS = frozenset({"postfix-script"})
EUID_CHANGERS = frozenset({"local", "virtual", "pipe", "spawn"})
"""PRIVILEGED daemons that deliver as the recipient, changing their effective uid (local
src/local/local.c:974, virtual src/virtual/virtual.c:561, pipe src/pipe/pipe.c:1387, spawn
src/spawn/spawn.c:367): their ``_UID`` may be any user's, so it is not checked."""

Verdict = tuple[str, str] | None


class Vouching(Protocol):
    """The part of :class:`pfwatch.sources.procfs.ProcScanner` used here."""

    visible: bool

    def vouches(
        self, pid: int, at: float, slack: float = 1.0, *, master: bool = False
    ) -> bool | None: ...


def postfix_uids(mail_owner: str = "postfix") -> frozenset[str]:
    """``_UID`` values a Postfix daemon's line may carry: root and the mail owner."""
    uids = {"0"}
    with contextlib.suppress(KeyError):
        uids.add(str(pwd.getpwnam(mail_owner).pw_uid))
    return frozenset(uids)


def journal_verdict(fields: Mapping[str, Any], ev: LogEvent, uids: frozenset[str]) -> Verdict:
    """Whether the journal's trusted fields say Postfix wrote the line of ``ev``.

    Each trusted field is checked when present; records without them (exported or
    forwarded journals) cannot be checked here and pass, and /proc may still check them.
    """
    if ev.daemon in COMMANDS:
        return None  # sendmail, postqueue, …: run by any user, they do not move the model
    pid, comm, exe = fields.get("_PID"), fields.get("_COMM"), fields.get("_EXE")
    uid, unit = fields.get("_UID"), fields.get("_SYSTEMD_UNIT")
    claimed = fields.get("SYSLOG_PID")
    if claimed is not None and pid is not None and str(claimed) != str(pid):
        return "journal_writer", f"the tag says pid {claimed}, journald saw pid {pid} write it"
    if ev.daemon in SCRIPT_DAEMONS:
        if uid is not None and str(uid) != "0":
            return "journal_writer", f"{ev.daemon} runs as root; uid {uid} wrote this"
        return None
    program = str(comm) if comm else PurePosixPath(str(exe)).name if exe else None
    if program is not None and program not in POSTFIX_PROGRAMS:
        return "journal_writer", f"written by {exe or comm}, not a Postfix daemon"
    if uid is not None and str(uid) not in uids and program not in EUID_CHANGERS:
        return "journal_writer", f"written by uid {uid}, not root or the Postfix user"
    if unit and not str(unit).startswith("postfix"):
        return "journal_writer", f"written from {unit}, not a postfix unit"
    return None


def proc_verdict(ev: LogEvent, scanner: Vouching, slack: float) -> Verdict:
    """Whether /proc contradicts the pid of the line (``pid_not_postfix``)."""
    if ev.pid <= 0 or ev.daemon in COMMANDS or ev.daemon in SCRIPT_DAEMONS:
        return None
    if scanner.vouches(ev.pid, ev.at, slack, master=ev.daemon == "master") is False:
        what = "the master" if ev.daemon == "master" else "a child of the master"
        return "pid_not_postfix", f"/proc shows pid {ev.pid} is not {what}"
    return None


def untrusted_finding(ev: LogEvent, reason: str, note: str) -> Finding:
    """The ``log_line_untrusted`` finding for a line that is not believed."""
    return Finding(
        "log_line_untrusted",
        ev.at,
        "observed",
        {
            "reason": reason,
            "daemon": ev.daemon,
            "pid": ev.pid,
            "kind": ev.kind,
            "source": ev.source,
            "line_no": ev.line_no,
            "note": note,
        },
    )
