"""The ``pfwatch`` command group and its registration of subcommands.

Each subcommand lives in its own module under :mod:`pfwatch.cli` and exposes a click
command object; they are listed in ``COMMANDS``. Inputs: argv. Outputs: exit codes from
:mod:`pfwatch.cli.exit_status`. Errors: never a traceback (see ``guarded``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import click

from pfwatch import __version__
from pfwatch.cli.exit_status import guarded
from pfwatch.errors import ExitStatus

COMMANDS: tuple[str, ...] = (
    # "module:attribute" of each subcommand, in --help order.
    "pfwatch.cli.config_cmd:config",
    "pfwatch.cli.tables_cmd:tables",
    "pfwatch.cli.diff_cmd:diff",
    "pfwatch.cli.history_cmd:history",
    "pfwatch.cli.check_cmd:check",
    "pfwatch.cli.wait_cmd:wait",
    "pfwatch.cli.lab_cmd:lab",
    "pfwatch.cli.explain_cmd:explain",
    "pfwatch.cli.watch_cmd:watch",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pfwatch")
def cli() -> None:
    """Tell when Postfix configuration edits actually go live.

    Postfix daemons read main.cf once, at process start, so an edit goes live by itself
    when the old processes exit (max_idle, max_use, a table rebuild) or at
    `postfix reload`. pfwatch watches the files and the log and says when.
    """


for _spec in COMMANDS:
    _module, _attr = _spec.split(":")
    cli.add_command(getattr(importlib.import_module(_module), _attr))


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: commands return an exit status (or None for OK).

    ``argv`` defaults to ``sys.argv[1:]``; tests pass it (:mod:`pfwatch.testing.cli`).
    """
    args = None if argv is None else list(argv)
    result = guarded(lambda: cli.main(args=args, prog_name="pfwatch", standalone_mode=False))
    raise SystemExit(int(result) if isinstance(result, int) else int(ExitStatus.OK))
