"""Lint what the configuration loader read: the one road from a snapshot to lint findings.

Inputs: a :class:`~pfwatch.config.snapshot.Snapshot` built from disk (its ``parsed``
files, its tables and their freshness). Outputs: the sorted :class:`LintFinding` tuple of
:func:`pfwatch.lint.check.lint`. Errors: :class:`~pfwatch.errors.ConfigSyntaxError` (file,
line, column) when main.cf or master.cf did not parse; :class:`SourceUnavailable` when
either could not be read (:func:`pfwatch.config.snapshot.parsed_files`).
"""

from __future__ import annotations

from pfwatch.config.facts import table_facts
from pfwatch.config.snapshot import Snapshot, parsed_files
from pfwatch.config.tables import load_table
from pfwatch.errors import SourceUnavailable
from pfwatch.lint.check import LintFinding, LintInput, lint


def table_transports(snapshot: Snapshot) -> dict[str, list[str]]:
    """Values of readable ``transport_maps`` tables (for the missing-transport rule)."""
    found: dict[str, list[str]] = {}
    for table in snapshot.tables:
        ref = table.ref
        if "transport_maps" not in ref.parameters or ref.source is None or ref.kind != "postmap":
            continue
        try:
            contents = load_table(ref.source, "postmap")
        except SourceUnavailable:
            continue
        found[ref.ref] = [value for value in contents.entries.values() if value]
    return found


def lint_snapshot(snapshot: Snapshot, *, check_daemons: bool = True) -> tuple[LintFinding, ...]:
    """Lint findings of the configuration ``snapshot`` read."""
    parsed = parsed_files(snapshot)
    assert parsed.master is not None  # parsed_files requires it unless told otherwise
    return lint(
        LintInput(
            main=parsed.main,
            master=parsed.master,
            knowledge=parsed.knowledge,
            tables=tuple(table_facts(table) for table in snapshot.tables),
            table_transports=table_transports(snapshot),
            check_daemons=check_daemons,
        )
    )
