"""Exit codes, and the one place exceptions become them.

Codes follow the monitoring-plugin convention so ``pfwatch check`` can run as a
Nagios/Icinga/Sensu check: 0 OK, 1 WARNING (pending edits that go live by themselves),
2 CRITICAL (an edit needs an action, or the configuration is broken), 3 UNKNOWN (cannot
tell: bad usage, unreadable input, a bug). Inputs: exceptions. Outputs: exit codes and one
message on stderr, never a traceback (set ``PFWATCH_DEBUG=1`` to get one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import NoReturn, TypeVar

import click

from pfwatch.errors import (
    ConfigSyntaxError,
    InvariantBroken,
    PfwatchError,
    SourceUnavailable,
    StateError,
    UsageError,
)

T = TypeVar("T")


class ExitStatus(IntEnum):
    """Process exit codes of every pfwatch command."""

    OK = 0
    PENDING = 1
    ACTION_NEEDED = 2
    UNKNOWN = 3


def status_for(exc: BaseException) -> ExitStatus:
    """Map an exception to the exit status the operator should see."""
    if isinstance(exc, ConfigSyntaxError):
        return ExitStatus.ACTION_NEEDED
    if isinstance(exc, SourceUnavailable | StateError | UsageError | InvariantBroken):
        return ExitStatus.UNKNOWN
    if isinstance(exc, click.UsageError):
        return ExitStatus.UNKNOWN
    return ExitStatus.UNKNOWN


def fail(exc: BaseException) -> NoReturn:
    """Print one clear line for ``exc`` on stderr and exit with its status."""
    if os.environ.get("PFWATCH_DEBUG"):
        raise exc
    if isinstance(exc, PfwatchError):
        message = str(exc)
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"{where}{exc.strerror or exc}"
    else:
        message = f"internal error ({type(exc).__name__}: {exc}); rerun with PFWATCH_DEBUG=1"
    click.echo(f"pfwatch: {message}", err=True)
    sys.exit(int(status_for(exc)))


def guarded(func: Callable[[], T]) -> T:
    """Run ``func``; turn any exception into a one-line message and an exit code."""
    try:
        return func()
    except (SystemExit, KeyboardInterrupt):
        raise
    except click.exceptions.Exit:
        raise
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitStatus.UNKNOWN))
    except Exception as exc:
        fail(exc)
