"""The error ladder of pfwatch.

Every error pfwatch raises on purpose derives from :class:`PfwatchError`. The rungs say
how bad it is and who must act; the command line maps them to exit codes in exactly one
place (:mod:`pfwatch.cli.exit_status`). Inputs: none. Outputs: exception classes.

- ``ConfigSyntaxError``: a Postfix file does not parse; carries file, line, column.
- ``InputLineError``: one input line (log or table) is unusable; the line is counted, kept.
- ``SourceUnavailable``: a file, directory, journal or process table cannot be read now.
- ``StateError``: the state directory is unusable (corrupt, full, unwritable).
- ``UsageError``: the operator asked for something impossible.
- ``InvariantBroken``: a bug in pfwatch (the "panic" rung).
"""

from __future__ import annotations


class PfwatchError(Exception):
    """Base class: an error pfwatch knows how to report."""


class ConfigSyntaxError(PfwatchError):
    """A configuration or table file does not parse as Postfix would read it."""

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
