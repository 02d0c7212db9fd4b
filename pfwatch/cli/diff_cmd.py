"""``pfwatch diff OLD_DIR NEW_DIR``: the semantic diff of two configuration directories.

Inputs: two Postfix configuration directories (each read with its own path as
``config_directory``). Outputs: one line per change (parameters raw and expanded, master.cf
services field by field and override by override, table entries by key, file-list words,
compiled files rebuilt, freshness), or with ``--json`` the diff as a JSON object. Secret
values (``*_sasl_password_maps`` tables, passwords in SQL/LDAP ``.cf`` files) appear only as
``sha256:`` short hashes.

Exit status: 0 no differences, 1 differences, 2 a main.cf or master.cf of either side is
missing or does not parse (problems on stderr; the diff is still printed), 3 a directory
is unusable.
"""

from __future__ import annotations

import json

import click

from pfwatch.cli.tables_cmd import config_file_problems
from pfwatch.config.diff import diff_lines, diff_snapshots, diff_to_json
from pfwatch.config.snapshot import build_snapshot
from pfwatch.errors import ExitStatus


@click.command("diff")
@click.argument("old_dir", type=click.Path(file_okay=False))
@click.argument("new_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the diff as a JSON object.")
def diff(old_dir: str, new_dir: str, as_json: bool) -> int:
    """Show what differs between two Postfix configuration directories.

    Exit status: 0 no differences, 1 differences, 2 a main.cf or master.cf is missing or
    does not parse, 3 unusable input.
    """
    old = build_snapshot(old_dir)
    new = build_snapshot(new_dir)
    result = diff_snapshots(old, new)
    if as_json:
        click.echo(json.dumps(diff_to_json(result), indent=2))
    else:
        for line in diff_lines(result):
            click.echo(line)
    broken = config_file_problems(old) + config_file_problems(new)
    for message in broken:
        click.echo(f"pfwatch: {message}", err=True)
    if broken:
        return int(ExitStatus.ACTION_NEEDED)
    return int(ExitStatus.OK if result.empty else ExitStatus.PENDING)
