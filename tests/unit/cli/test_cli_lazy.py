"""The command line loads a command's modules only when that command runs.

``import pfwatch.cli.main`` (and so ``pfwatch --version``/``--help``) must stay free of
the engine, the config parser and the heavy libraries; ``--help`` still lists every
command with the summary its own module declares.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from pfwatch.cli.main import COMMANDS, cli, load_command

HEAVY = (
    "pyparsing",
    "psutil",
    "structlog",
    "rich",
    "prometheus_client",
    "watchdog",
    "sqlite3",
    "pfwatch.core",
    "pfwatch.config",
    "pfwatch.maillog",
    "pfwatch.sources",
    "pfwatch.sinks",
    "pfwatch.store",
    "pfwatch.service",
)
LIGHT_PFWATCH = {"pfwatch", "pfwatch.cli", "pfwatch.cli.main", "pfwatch.cli.exit_status"}
LIGHT_PFWATCH |= {"pfwatch.errors"}


def _modules_after(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return list(json.loads(out.splitlines()[-1]))


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_import_of_the_entry_point_is_light() -> None:
    modules = _modules_after("import pfwatch.cli.main")
    assert _heavy(modules) == []
    assert {m for m in modules if m.startswith("pfwatch")} <= LIGHT_PFWATCH


def test_version_and_help_import_no_command_module() -> None:
    for flag in ("--version", "--help"):
        modules = _modules_after(
            "from pfwatch.cli.main import cli\n"
            f"cli.main([{flag!r}], prog_name='pfwatch', standalone_mode=False)"
        )
        assert _heavy(modules) == [], flag
        assert not [m for m in modules if m.endswith("_cmd")], flag


def test_a_command_loads_only_its_own_module() -> None:
    modules = _modules_after(
        "from pfwatch.cli.main import cli\n"
        "try:\n"
        "    cli.main(['diff', '--help'], prog_name='pfwatch', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass"
    )
    loaded = {m for m in modules if m.endswith("_cmd")}
    assert "pfwatch.cli.diff_cmd" in loaded
    assert not loaded & {"pfwatch.cli.watch_cmd", "pfwatch.cli.explain_cmd", "pfwatch.cli.lab_cmd"}


def test_every_summary_is_the_first_paragraph_of_its_commands_help() -> None:
    for name, (_, summary) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        assert command.help is not None
        assert summary == command.help.split("\n\n")[0].strip(), name


def test_help_lists_every_command_as_an_eager_group_would() -> None:
    eager = click.Group(
        "pfwatch",
        help=cli.help,
        params=list(cli.params),
        context_settings=cli.context_settings,
        commands=[load_command(name) for name in COMMANDS],
    )
    lazy_help = CliRunner().invoke(cli, ["--help"], prog_name="pfwatch").output
    eager_help = CliRunner().invoke(eager, ["--help"], prog_name="pfwatch").output
    assert lazy_help == eager_help
    for name in COMMANDS:
        assert f"\n  {name} " in lazy_help


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"], prog_name="pfwatch")
    assert result.exit_code == 2
    assert "No such command" in result.output
