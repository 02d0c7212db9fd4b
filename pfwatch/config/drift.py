"""What drifted in one change, for the audit trail: :class:`pfwatch.events.Drift`.

From the semantic diff and the two snapshots: per parameter the old and new value (as
written, and expanded when expansion changes it), per master.cf service the changed
fields and ``-o`` overrides, per table how many keys were added, removed and changed
with the first :data:`KEYS_SHOWN` of them, and the content hashes (sha256) of every
changed file and table source before and after, plus both configuration digests.

Secrets never appear (rules of :mod:`pfwatch.config.redact`): snapshot values of secret
parameters, fields and tables arrive redacted already, and are redacted again here by
name (idempotent); the keys of secret tables (e.g. ``smtp_sasl_password_maps``) are not
shown either, only counted. Inputs: a :class:`ConfigDiff` and the old and new
:class:`Snapshot`. Outputs: a frozen :class:`Drift`. Errors: none.
"""

from __future__ import annotations

from pathlib import Path

from pfwatch.config.diff import ConfigDiff, FieldChange, TableChange
from pfwatch.config.redact import is_secret_field, redact
from pfwatch.config.snapshot import Snapshot
from pfwatch.events import Drift, FieldDrift, FileDrift, ParameterDrift, ServiceDrift, TableDrift

KEYS_SHOWN = 5
"""Keys named per table (the first ones in key order); ``more_keys`` counts the rest."""


def drift_of(diff: ConfigDiff, old: Snapshot, new: Snapshot) -> Drift:
    """The :class:`Drift` from ``old`` to ``new`` (``diff`` is their semantic diff)."""
    return Drift(
        digest_before=old.digest,
        digest_after=new.digest,
        parameters=tuple(
            ParameterDrift(
                name=p.name,
                old=_shown(p.name, p.old_raw),
                new=_shown(p.name, p.new_raw),
                old_expanded=_shown(p.name, p.old_expanded)
                if p.old_expanded != p.old_raw
                else None,
                new_expanded=_shown(p.name, p.new_expanded)
                if p.new_expanded != p.new_raw
                else None,
                via=p.via,
            )
            for p in diff.parameters
        ),
        services=tuple(
            ServiceDrift(
                service=s.key,
                kind=s.kind,
                fields=(
                    *(_field(f.name, f) for f in s.fields),
                    *(_field(f"-o {f.name}", f, f.name) for f in s.overrides),
                ),
            )
            for s in diff.services
        ),
        tables=tuple(_table(t, old, new) for t in diff.tables),
        files=_files(diff, old, new),
    )


def _shown(name: str, value: str | None) -> str | None:
    if value is None or not is_secret_field(name):
        return value
    return redact(value)


def _expanded(name: str, expanded: str | None, raw: str | None) -> str | None:
    """The expanded value when expansion changes it, else None (nothing to add)."""
    return _shown(name, expanded) if expanded != raw else None


def _field(label: str, change: FieldChange, name: str = "") -> FieldDrift:
    return FieldDrift(label, _shown(name, change.old), _shown(name, change.new))


def _table(change: TableChange, old: Snapshot, new: Snapshot) -> TableDrift:
    added = [e.name for e in change.entries if e.old is None]
    removed = [e.name for e in change.entries if e.new is None]
    changed = [e.name for e in change.entries if e.old is not None and e.new is not None]
    keys = sorted(e.name for e in change.entries)
    shown = () if change.secret else tuple(keys[:KEYS_SHOWN])
    return TableDrift(
        ref=change.ref,
        kind=change.kind,
        added=len(added),
        removed=len(removed),
        changed=len(changed),
        keys=shown,
        more_keys=len(keys) - len(shown),
        sha256_before=_source_hash(old, change.source),
        sha256_after=_source_hash(new, change.source),
        compared=change.lines_not_compared == 0,
        secret=change.secret,
    )


def _source_hash(snapshot: Snapshot, source: str | None) -> str | None:
    """sha256 of a table source in ``snapshot`` (paths compared as the diff normalised)."""
    if source is None:
        return None
    wanted = source.replace("$config_directory", snapshot.config_dir.rstrip("/"))
    for table in snapshot.tables:
        if table.source is not None and table.ref.source == wanted:
            return table.source.sha256
    return None


def _files(diff: ConfigDiff, old: Snapshot, new: Snapshot) -> tuple[FileDrift, ...]:
    found: list[FileDrift] = []
    for name in ("main.cf", "master.cf"):
        before = old.files.get(str(Path(old.config_dir) / name))
        after = new.files.get(str(Path(new.config_dir) / name))
        was = before.sha256 if before else None
        now = after.sha256 if after else None
        if was != now:
            found.append(FileDrift(str(Path(new.config_dir) / name), was, now))
    for table in diff.tables:
        if table.source_changed and table.source:
            found.append(
                FileDrift(
                    table.source, _source_hash(old, table.source), _source_hash(new, table.source)
                )
            )
    return tuple(found)
