"""``pfwatch history``: past configuration changes, when they were made and went live.

Inputs: the state database of ``pfwatch watch`` (``--state-dir``, else the settings
layers of :mod:`pfwatch.settings`), opened read-only. Outputs: a table (edit time, live
time, lag, actions needed, files; with ``--drift`` each change followed by what drifted,
old and new values) or, with ``--json``, a JSON array of change objects.
Exit status 0; 3 (UNKNOWN) when the state database cannot be read. Errors: StateError
from the store, reported by :mod:`pfwatch.cli.exit_status`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pfwatch.errors import ExitStatus
from pfwatch.events import rfc3339_utc
from pfwatch.settings import load_settings
from pfwatch.store.sqlite import ChangeRecord, open_read_only


@click.command("history")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="State directory of pfwatch watch [env PFWATCH_STATE_DIR; default /var/lib/pfwatch].",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the newest N.")
@click.option("--drift", "show_drift", is_flag=True, help="Show old and new values under each.")
def history(state_dir: Path | None, as_json: bool, limit: int | None, show_drift: bool) -> int:
    """List past configuration changes: edit time, live time and lag."""
    directory = state_dir or load_settings({}, exists=lambda _path: False).state_dir
    store = open_read_only(directory)
    if store is None:
        if as_json:
            click.echo("[]")
        else:
            click.echo(f"no history yet: no pfwatch state in {directory}", err=True)
        return int(ExitStatus.OK)
    try:
        changes = store.changes(limit=limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([change_document(c) for c in changes], indent=2))
    else:
        click.echo(render_table(changes, drift=show_drift))
    return int(ExitStatus.OK)


def change_document(change: ChangeRecord) -> dict[str, Any]:
    """The JSON object of one change (times as ISO 8601 UTC, lag in seconds)."""
    return {
        "change_id": change.change_id,
        "detected_at": rfc3339_utc(change.detected_at),
        "predicted_live_at": _iso(change.predicted_live_at),
        "live_at": _iso(change.live_at),
        "lag_seconds": change.lag_seconds,
        "needs": list(change.needs),
        "files": list(change.files),
        "basis": change.basis,
        "summary": {k: v for k, v in change.summary.items() if k != "drift"},
        "drift": change.summary.get("drift"),
    }


def render_table(changes: list[ChangeRecord], *, drift: bool = False) -> str:
    """A plain-text table, one change per line, oldest first (``drift``: then its values)."""
    if not changes:
        return "no configuration changes recorded yet"
    rows = [("CHANGE", "EDITED (UTC)", "LIVE (UTC)", "LAG", "NEEDS", "FILES")]
    for change in changes:
        live = _short(change.live_at) if change.live_at is not None else "pending"
        if change.live_at is None and change.predicted_live_at is not None:
            live = f"pending (~{_short(change.predicted_live_at)})"
        rows.append(
            (
                change.change_id,
                _short(change.detected_at),
                live,
                _duration(change.lag_seconds),
                ",".join(_action(need) for need in change.needs) or "-",
                " ".join(Path(f).name for f in change.files) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
        if drift and index > 0:
            lines += [
                f"    {line}" for line in drift_lines(changes[index - 1].summary.get("drift"))
            ]
    return "\n".join(lines)


def drift_lines(drift: Any) -> list[str]:
    """What drifted, one line per parameter, master.cf field, table and file."""
    if not isinstance(drift, dict):
        return ["(old values not recorded)"]
    lines = [
        f"{p['name']}: {_value(p['old'])} -> {_value(p['new'])}"
        for p in drift.get("parameters", [])
    ]
    for service in drift.get("services", []):
        if service["kind"] != "changed":
            lines.append(f"master.cf {service['service']}: {service['kind']}")
        lines += [
            f"master.cf {service['service']} {f['name']}: {_value(f['old'])} -> {_value(f['new'])}"
            for f in service.get("fields", [])
        ]
    for table in drift.get("tables", []):
        more = f" and {table['more_keys']} more" if table["more_keys"] else ""
        keys = ", ".join(table["keys"]) + more if table["keys"] else ""
        if table.get("secret"):
            keys = "keys of a table of secrets not shown"
        lines.append(
            f"{table['ref']}: +{table['added']} -{table['removed']} ~{table['changed']} keys"
            + (f" ({keys})" if keys else "")
        )
    lines += [
        f"{f['path']}: {_short_hash(f['sha256_before'])} -> {_short_hash(f['sha256_after'])}"
        for f in drift.get("files", [])
    ]
    return lines


def _value(value: Any) -> str:
    return "(unset)" if value is None else repr(value)


def _short_hash(value: Any) -> str:
    return "(absent)" if value is None else f"sha256:{str(value)[:12]}"


def _action(need: Any) -> str:
    if isinstance(need, dict):
        return str(need.get("action") or need.get("kind") or sorted(need.items()))
    return str(need)


def _iso(at: float | None) -> str | None:
    return None if at is None else rfc3339_utc(at)


def _short(at: float) -> str:
    return rfc3339_utc(at)[:19].replace("T", " ")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
