"""The error ladder of pfwatch, and the exit status each rung means.

Every error pfwatch raises on purpose derives from :class:`PfwatchError`. The rungs say
how bad it is and who must act, and each carries its process exit status
(:attr:`PfwatchError.exit_status`); :func:`exit_status_of` and :func:`describe` are the one
place any exception becomes an exit code and a one-line message. Inputs: none. Outputs:
exception classes, :class:`ExitStatus`, the mapping functions.

- ``ConfigSyntaxError``: a Postfix file does not parse; carries file, line, column. Exit 2.
- ``InputLineError``: one input line (log or table) is unusable; the line is counted, kept.
- ``SourceUnavailable``: a file, directory, journal or process table cannot be read now.
- ``StateError``: the state directory is unusable (corrupt, full, unwritable).
- ``UsageError``: the operator asked for something impossible.
- ``InvariantBroken``: a bug in pfwatch (the "panic" rung).

All but ``ConfigSyntaxError`` exit 3 (cannot tell).
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitStatus(IntEnum):
    """Process exit codes of every pfwatch command (the monitoring-plugin convention).

    0 OK, 1 WARNING (pending edits that go live by themselves), 2 CRITICAL (an edit needs
    an action, or the configuration is broken), 3 UNKNOWN (cannot tell: bad usage,
    unreadable input, a bug).
    """

    OK = 0
    PENDING = 1
    ACTION_NEEDED = 2
    UNKNOWN = 3


class PfwatchError(Exception):
    """Base class: an error pfwatch knows how to report."""

    exit_status: ClassVar[ExitStatus] = ExitStatus.UNKNOWN


class ConfigSyntaxError(PfwatchError):
    """A configuration or table file does not parse as Postfix would read it."""

    exit_status: ClassVar[ExitStatus] = ExitStatus.ACTION_NEEDED

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{path}:{line}:{column}: {message}")


class InputLineError(PfwatchError):
    """A single input line cannot be used; the caller counts it and goes on."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        super().__init__(f"{source}:{line}: {message}")


class SourceUnavailable(PfwatchError):
    """A file, directory, journal or process table cannot be read right now."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")


class StateError(PfwatchError):
    """The state directory or database cannot be used."""


class UsageError(PfwatchError):
    """The operator asked for something impossible (bad flag combination, bad value)."""


class InvariantBroken(PfwatchError):
    """pfwatch found a bug in itself; report it."""


def exit_status_of(exc: BaseException) -> ExitStatus:
    """The exit status ``exc`` means: its rung's status, UNKNOWN for anything else."""
    if isinstance(exc, PfwatchError):
        return exc.exit_status
    return ExitStatus.UNKNOWN


def describe(exc: BaseException) -> str:
    """One line for the operator: the error's own text, never a traceback."""
    if isinstance(exc, PfwatchError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return f"internal error ({type(exc).__name__}: {exc}); rerun with PFWATCH_DEBUG=1"
