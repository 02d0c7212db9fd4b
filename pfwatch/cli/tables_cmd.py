"""``pfwatch tables``: every table and file list Postfix reads, with freshness.

Inputs: ``--config-dir`` (default ``$MAIL_CONFIG`` or /etc/postfix). Outputs: a rich table
(reference, type, source, compiled file, freshness, referencing parameters and master.cf
services, problems) or, with ``--json``, a JSON array with one object per table. A missing
or unreadable table is a row saying so, never a crash. Exit status 0 when main.cf could be
read; 2 (ACTION_NEEDED) when main.cf or master.cf does not parse (the tables shown are then
from what could be read); 3 when the directory is unusable.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pfwatch.config.snapshot import Snapshot, TableState, build_snapshot
from pfwatch.errors import ExitStatus

DEFAULT_CONFIG_DIR = "/etc/postfix"

#: How each freshness state reads for an operator.
FRESHNESS_TEXT = {
    "fresh": "fresh",
    "stale": "source newer than compiled file: run postmap",
    "not-compiled": "compiled file missing: run postmap",
    "source-missing": "compiled file only (no source)",
    "missing": "missing",
    "present": "read directly",
    "unreadable": "unreadable",
    "n/a": "no file",
}

config_dir_option = click.option(
    "--config-dir",
    envvar="MAIL_CONFIG",
    default=DEFAULT_CONFIG_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Postfix configuration directory [env MAIL_CONFIG].",
)


def table_document(table: TableState) -> dict[str, Any]:
    """The JSON object of one referenced table or file list."""
    ref = table.ref
    source = table.source
    return {
        "ref": ref.ref,
        "type": ref.type,
        "source": ref.source,
        "compiled": list(ref.compiled),
        "freshness": table.freshness.state,
        "fresh": table.freshness.fresh,
        "source_mtime": table.freshness.source_mtime,
        "compiled_mtime": table.freshness.compiled_mtime,
        "parameters": list(ref.parameters),
        "services": list(ref.services),
        "via": list(ref.via),
        "secret": ref.secret,
        "relative": ref.relative,
        # None: the source has more lines than pfwatch compares key by key
        "entries": None if table.entries_skipped else len(table.entries),
        "lines_not_parsed": table.entries_skipped,
        "error": source.error if source else None,
        "problems": [
            {"line": p.line, "column": p.column, "message": p.message}
            for p in (source.problems if source else ())
        ],
    }


def render_tables(snapshot: Snapshot, console: Console) -> None:
    """Print the tables of ``snapshot`` as a rich table."""
    grid = Table(title=f"Tables referenced from {snapshot.config_dir}", show_lines=False)
    for column in ("table", "source", "compiled", "freshness", "used by"):
        grid.add_column(column, overflow="fold")
    for table in snapshot.tables:
        ref = table.ref
        state = FRESHNESS_TEXT.get(table.freshness.state, table.freshness.state)
        if table.source is not None and table.source.problems:
            state += f" ({len(table.source.problems)} problem(s))"
        users = [*ref.parameters, *(f"master.cf {s}" for s in ref.services)]
        grid.add_row(
            ref.ref + (f" (via {', '.join(ref.via)})" if ref.via else ""),
            ref.source or "-",
            ", ".join(ref.compiled) or "-",
            state,
            ", ".join(users),
        )
    console.print(grid)


@click.command("tables")
@config_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def tables(config_dir: str, as_json: bool) -> int:
    """List every lookup table and file list Postfix reads, and whether it is fresh.

    Covers main.cf (with Postfix defaults, e.g. alias_maps) and master.cf -o overrides.
    "source newer than compiled file" means postmap has not been run since the last edit.
    """
    snapshot = build_snapshot(config_dir)
    if as_json:
        click.echo(json.dumps([table_document(t) for t in snapshot.tables], indent=2))
    else:
        render_tables(snapshot, Console())
    broken = config_file_problems(snapshot)
    for message in broken:
        click.echo(f"pfwatch: {message}", err=True)
    return int(ExitStatus.ACTION_NEEDED if broken else ExitStatus.OK)


def config_file_problems(snapshot: Snapshot) -> list[str]:
    """main.cf/master.cf problems as ``path:line:column: message`` (or ``path: error``)."""
    messages = []
    for state in snapshot.files.values():
        if state.error is not None:
            messages.append(f"{state.path}: {state.error}")
        messages.extend(
            f"{p.path}:{p.line}:{p.column}: {p.message}"
            + (" (the last good parse stays in force)" if state.stale else "")
            for p in state.problems
        )
    return messages
