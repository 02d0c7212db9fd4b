"""Options shared by the commands that look at a running Postfix (``check``, ``wait``).

One decorator declares ``--config-dir``, ``--maillog`` (repeatable), ``--journal`` and
``--state-dir`` with the same types and names for both commands; only the help text says
what each command does with the log and the state. Inputs: the help texts. Output: a
click decorator. Errors: none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["live_postfix_options"]

F = TypeVar("F", bound=Callable[..., Any])


def live_postfix_options(*, maillog: str, journal: str, state_dir: str) -> Callable[[F], F]:
    """``--config-dir``, ``--maillog FILE``..., ``--journal`` and ``--state-dir``."""
    options = (
        click.option(
            "--config-dir",
            type=click.Path(path_type=Path),
            help="Postfix configuration directory (default $MAIL_CONFIG or /etc/postfix).",
        ),
        click.option("--maillog", multiple=True, metavar="FILE", help=maillog),
        click.option("--journal", is_flag=True, help=journal),
        click.option("--state-dir", type=click.Path(path_type=Path), help=state_dir),
    )

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate
