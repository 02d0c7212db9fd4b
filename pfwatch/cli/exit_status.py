"""Where a command's exception is reported: one line on stderr and its exit status.

The statuses and the mapping from exceptions to them live with the error ladder
(:class:`pfwatch.errors.ExitStatus`, :func:`pfwatch.errors.exit_status_of`); this module
only catches at the top of the command line. Inputs: exceptions. Outputs: one message on
stderr and the exit code, never a traceback (set ``PFWATCH_DEBUG=1`` to get one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click

from pfwatch.errors import ExitStatus, describe, exit_status_of

T = TypeVar("T")


def fail(exc: BaseException) -> NoReturn:
    """Print one clear line for ``exc`` on stderr and exit with its status."""
    if os.environ.get("PFWATCH_DEBUG"):
        raise exc
    click.echo(f"pfwatch: {describe(exc)}", err=True)
    sys.exit(int(exit_status_of(exc)))


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
