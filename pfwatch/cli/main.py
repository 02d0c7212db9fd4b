"""The ``pfwatch`` command group and its registration of subcommands.

Each subcommand lives in its own module under :mod:`pfwatch.cli` and exposes a click
command object; ``COMMANDS`` maps each name to that object's import path and its one-line
summary. A command's module is imported only when that command runs (or when asked for its
own help), so ``pfwatch --version``, ``pfwatch --help`` and a light command do not pay
for every other command's imports. Inputs: argv. Outputs: exit codes from
:mod:`pfwatch.errors`. Errors: never a traceback (see ``guarded``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import click

from pfwatch import __version__
from pfwatch.cli.exit_status import guarded
from pfwatch.errors import ExitStatus

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:attribute", the first paragraph of the command's help: the summary
    # ``pfwatch --help`` lists; tests/unit/test_cli_lazy.py keeps the two equal)
    "config": (
        "pfwatch.cli.config_cmd:config",
        "Show main.cf parameters (like postconf -n) or master.cf services (like postconf -M).",
    ),
    "tables": (
        "pfwatch.cli.tables_cmd:tables",
        "List every lookup table and file list Postfix reads, and whether it is fresh.",
    ),
    "diff": (
        "pfwatch.cli.diff_cmd:diff",
        "Show what differs between two Postfix configuration directories.",
    ),
    "history": (
        "pfwatch.cli.history_cmd:history",
        "List past configuration changes: edit time, live time and lag.",
    ),
    "check": (
        "pfwatch.cli.check_cmd:check",
        "Report pending configuration edits, stale tables and lint; exit 0/1/2/3.",
    ),
    "wait": (
        "pfwatch.cli.wait_cmd:wait",
        "Wait until every pending edit is live; exit 0 live, 1 timeout, 2 action needed.",
    ),
    "lab": (
        "pfwatch.cli.lab_cmd:lab",
        "Rehearse a change on a throwaway real Postfix on 127.0.0.1, watched by the engine.",
    ),
    "explain": (
        "pfwatch.cli.explain_cmd:explain",
        "Explain a maillog: every process's life and when each edit went live, and why.",
    ),
    "watch": (
        "pfwatch.cli.watch_cmd:watch",
        "Watch the configuration, the log and the processes; report when edits go live.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the module of command ``name`` and return its click command."""
    module, attr = COMMANDS[name][0].split(":")
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command)
    return command


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, from the summaries in ``COMMANDS`` (no command module imported)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        # a bare command with the summary as its help shortens it exactly as the real one
        rows = [
            (name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="pfwatch")
def cli() -> None:
    """Tell when Postfix configuration edits actually go live.

    Postfix daemons read main.cf once, at process start, so an edit goes live by itself
    when the old processes exit (max_idle, max_use, a table rebuild) or at
    `postfix reload`. pfwatch watches the files and the log and says when.
    """


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: commands return an exit status (or None for OK).

    ``argv`` defaults to ``sys.argv[1:]``; tests pass it (:mod:`pfwatch.testing.cli`).
    """
    args = None if argv is None else list(argv)
    result = guarded(lambda: cli.main(args=args, prog_name="pfwatch", standalone_mode=False))
    raise SystemExit(int(result) if isinstance(result, int) else int(ExitStatus.OK))
