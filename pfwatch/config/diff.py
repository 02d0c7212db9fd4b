"""Semantic diff of two snapshots.

Levels: parameters (raw value as written, and expanded value, so an edit of ``myhostname``
also shows up on ``smtpd_banner`` that only references it), master.cf services (field by
field, ``-o`` override by override), tables (entries by key, file-list words, compiled file
rebuilt by postmap, freshness) and files. Secret values arrive already redacted from the
snapshot (:mod:`pfwatch.config.redact`); this module never sees a password.

When the two snapshots come from different directories (``pfwatch diff OLD NEW``), each
directory's own path is replaced by ``$config_directory`` before comparing, so the same
table in both is one table.

Inputs: two :class:`~pfwatch.config.snapshot.Snapshot`. Outputs: :class:`ConfigDiff`
(JSON via :func:`diff_to_json`, text via :func:`diff_lines`); what the engine receives of
a diff is built by :mod:`pfwatch.config.facts`. Errors: none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pfwatch.config.model import MasterService
from pfwatch.config.snapshot import Snapshot, TableState

ChangeKind = Literal["added", "removed", "changed"]
CONFIG_DIR_TOKEN = "$config_directory"  # noqa: S105 (not a password)
SERVICE_FIELDS = ("private", "unpriv", "chroot", "wakeup", "maxproc", "command", "args")


@dataclass(frozen=True, slots=True)
class ParameterChange:
    """A parameter whose raw or expanded value differs; ``via`` names changed references."""

    name: str
    kind: ChangeKind
    old_raw: str | None
    new_raw: str | None
    old_expanded: str | None
    new_expanded: str | None
    via: tuple[str, ...] = ()

    @property
    def expanded_only(self) -> bool:
        """True when only a referenced ``$name`` changed, not this parameter's own text."""
        return self.old_raw == self.new_raw


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One master.cf field or ``-o`` override (None: absent on that side)."""

    name: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class ServiceChange:
    """A master.cf service added, removed, or changed field by field."""

    key: str
    kind: ChangeKind
    fields: tuple[FieldChange, ...] = ()
    overrides: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class TableChange:
    """A referenced table or file list that appeared, disappeared or changed."""

    ref: str
    type: str
    kind: ChangeKind
    source: str | None
    compiled: str | None
    entries: tuple[FieldChange, ...] = ()
    source_changed: bool = False
    compiled_changed: bool = False
    old_freshness: str | None = None
    new_freshness: str | None = None
    old_error: str | None = None
    new_error: str | None = None
    parameters: tuple[str, ...] = ()
    secret: bool = False
    lines_not_compared: int = 0
    """Source lines of a table too large for a key-level comparison (then ``entries`` is
    empty and only ``source_changed`` tells)."""


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """Everything that differs between two snapshots."""

    old_dir: str
    new_dir: str
    parameters: tuple[ParameterChange, ...]
    services: tuple[ServiceChange, ...]
    tables: tuple[TableChange, ...]
    files: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """True when nothing differs."""
        return not (self.parameters or self.services or self.tables or self.files)


def _normaliser(*config_dirs: str) -> Any:
    """Replace each directory path (as a whole path prefix) by ``$config_directory``."""
    prefixes = sorted({d.rstrip("/") for d in config_dirs if d.rstrip("/")}, key=len)
    if len(prefixes) < 2:
        return lambda text: text
    pattern = re.compile(
        "|".join(re.escape(prefix) for prefix in reversed(prefixes)) + r"(?=/|$|[\s,}])"
    )

    def normalise(text: str | None) -> str | None:
        if text is None:
            return None
        return pattern.sub(lambda _match: CONFIG_DIR_TOKEN, text)

    return normalise


def _mapping_changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[FieldChange, ...]:
    changes = [
        FieldChange(key, old.get(key), new.get(key))
        for key in dict.fromkeys([*old, *new])
        if old.get(key) != new.get(key)
    ]
    return tuple(changes)


def _parameters(old: Snapshot, new: Snapshot, n_old: Any, n_new: Any) -> list[ParameterChange]:
    changes: list[ParameterChange] = []
    raw_changed = {
        name
        for name in set(old.parameters) | set(new.parameters)
        if n_old(old.parameters.get(name)) != n_new(new.parameters.get(name))
    }
    for name in sorted(set(old.expanded) | set(new.expanded) | raw_changed):
        old_raw, new_raw = n_old(old.parameters.get(name)), n_new(new.parameters.get(name))
        old_exp, new_exp = n_old(old.expanded.get(name)), n_new(new.expanded.get(name))
        if old_raw == new_raw and old_exp == new_exp:
            continue
        if name == "config_directory" and old_raw == new_raw:
            continue  # the two directories themselves
        if old_raw is None and new_raw is not None:
            kind: ChangeKind = "added"
        elif new_raw is None and old_raw is not None:
            kind = "removed"
        else:
            kind = "changed"
        via = tuple(
            sorted(
                (set(old.depends.get(name, ())) | set(new.depends.get(name, ())))
                & (raw_changed - {name})
            )
        )
        changes.append(ParameterChange(name, kind, old_raw, new_raw, old_exp, new_exp, via))
    return changes


def _service_fields(service: MasterService) -> dict[str, str]:
    values = {name: getattr(service, name) for name in SERVICE_FIELDS}
    values["args"] = " ".join(service.args)
    return values


def _services(old: Snapshot, new: Snapshot, n_old: Any, n_new: Any) -> list[ServiceChange]:
    before = {s.key: s for s in old.services}
    after = {s.key: s for s in new.services}
    changes: list[ServiceChange] = []
    for key in dict.fromkeys([*before, *after]):
        if key not in after:
            changes.append(ServiceChange(key, "removed"))
            continue
        if key not in before:
            changes.append(ServiceChange(key, "added"))
            continue
        fields = _mapping_changes(
            {k: n_old(v) for k, v in _service_fields(before[key]).items()},
            {k: n_new(v) for k, v in _service_fields(after[key]).items()},
        )
        overrides = _mapping_changes(
            {k: n_old(v) for k, v in before[key].overrides.items()},
            {k: n_new(v) for k, v in after[key].overrides.items()},
        )
        fields = tuple(f for f in fields if f.name != "args" or not overrides)
        if fields or overrides:
            changes.append(ServiceChange(key, "changed", fields, overrides))
    return changes


def _compiled_fingerprint(table: TableState) -> tuple[tuple[float | None, int | None], ...]:
    return tuple((item.mtime, item.size) for item in table.compiled)


def _tables(old: Snapshot, new: Snapshot, n_old: Any, n_new: Any) -> list[TableChange]:
    before = {n_old(t.ref.ref): t for t in old.tables}
    after = {n_new(t.ref.ref): t for t in new.tables}
    changes: list[TableChange] = []
    for ref in sorted(set(before) | set(after)):
        was, now = before.get(ref), after.get(ref)
        table = now or was
        assert table is not None
        normalise = n_new if now is not None else n_old
        common: dict[str, Any] = {
            "ref": ref,
            "type": table.ref.type,
            "source": normalise(table.ref.source),
            "compiled": normalise(table.ref.compiled[0]) if table.ref.compiled else None,
            "parameters": table.ref.parameters,
            "secret": table.ref.secret,
        }
        if was is None or now is None:
            kind: ChangeKind = "added" if was is None else "removed"
            changes.append(
                TableChange(
                    kind=kind,
                    old_freshness=was.freshness.state if was is not None else None,
                    new_freshness=now.freshness.state if now is not None else None,
                    **common,
                )
            )
            continue
        entries = _mapping_changes(was.entries, now.entries)
        old_sha = was.source.sha256 if was.source else None
        new_sha = now.source.sha256 if now.source else None
        compiled_changed = _compiled_fingerprint(was) != _compiled_fingerprint(now)
        old_error = was.source.error if was.source else None
        new_error = now.source.error if now.source else None
        if not (
            entries
            or old_sha != new_sha
            or compiled_changed
            or was.freshness.state != now.freshness.state
            or old_error != new_error
        ):
            continue
        changes.append(
            TableChange(
                kind="changed",
                entries=entries,
                source_changed=old_sha != new_sha,
                compiled_changed=compiled_changed,
                lines_not_compared=max(was.entries_skipped, now.entries_skipped),
                old_freshness=was.freshness.state,
                new_freshness=now.freshness.state,
                old_error=old_error,
                new_error=new_error,
                **common,
            )
        )
    return changes


def diff_snapshots(old: Snapshot, new: Snapshot) -> ConfigDiff:
    """The semantic difference from ``old`` to ``new``."""
    n_old = n_new = _normaliser(old.config_dir, new.config_dir)
    files = []
    for name in ("main.cf", "master.cf"):
        was = old.files.get(str(Path(old.config_dir) / name))
        now = new.files.get(str(Path(new.config_dir) / name))
        if (was.sha256 if was else None) != (now.sha256 if now else None):
            files.append(str(Path(new.config_dir) / name))
    tables = _tables(old, new, n_old, n_new)
    for change in tables:
        if change.source_changed and change.source:
            files.append(change.source)
        if change.compiled_changed and change.compiled:
            files.append(change.compiled)
    return ConfigDiff(
        old_dir=old.config_dir,
        new_dir=new.config_dir,
        parameters=tuple(_parameters(old, new, n_old, n_new)),
        services=tuple(_services(old, new, n_old, n_new)),
        tables=tuple(tables),
        files=tuple(dict.fromkeys(files)),
    )


def diff_to_json(diff: ConfigDiff) -> dict[str, Any]:
    """JSON-ready form of a diff."""
    data = asdict(diff)
    data["empty"] = diff.empty
    return data


def _show(value: str | None) -> str:
    return "(unset)" if value is None else repr(value)


def diff_lines(diff: ConfigDiff) -> list[str]:
    """One human-readable line per change (``+`` added, ``-`` removed, ``~`` changed)."""
    mark = {"added": "+", "removed": "-", "changed": "~"}
    lines: list[str] = []
    for p in diff.parameters:
        if p.expanded_only:
            via = f" (via ${', $'.join(p.via)})" if p.via else ""
            lines.append(
                f"~ parameter {p.name}: expands to {_show(p.new_expanded)}, was "
                f"{_show(p.old_expanded)}{via}"
            )
            continue
        text = f"{mark[p.kind]} parameter {p.name}: {_show(p.old_raw)} -> {_show(p.new_raw)}"
        if p.new_expanded != p.new_raw and p.new_expanded is not None:
            text += f" (expands to {p.new_expanded!r})"
        lines.append(text)
    for s in diff.services:
        if s.kind != "changed":
            lines.append(f"{mark[s.kind]} service {s.key}")
            continue
        for f in s.fields:
            lines.append(f"~ service {s.key} field {f.name}: {_show(f.old)} -> {_show(f.new)}")
        for f in s.overrides:
            lines.append(f"~ service {s.key} -o {f.name}: {_show(f.old)} -> {_show(f.new)}")
    for t in diff.tables:
        if t.kind != "changed":
            lines.append(f"{mark[t.kind]} table {t.ref}")
            continue
        for e in t.entries:
            kind = "+" if e.old is None else "-" if e.new is None else "~"
            if t.type == "file-list":
                lines.append(f"{kind} file list {t.ref}: {e.name}")
            else:
                lines.append(
                    f"{kind} table {t.ref} key {e.name!r}: {_show(e.old)} -> {_show(e.new)}"
                )
        if t.lines_not_compared and t.source_changed:
            lines.append(
                f"~ table {t.ref}: source changed ({t.lines_not_compared} lines, too many to "
                "compare key by key)"
            )
        if t.old_error != t.new_error:
            lines.append(
                f"~ table {t.ref}: {t.old_error or 'readable'} -> {t.new_error or 'readable'}"
            )
        if t.compiled_changed:
            lines.append(f"~ table {t.ref}: compiled file {t.compiled} rebuilt (postmap ran)")
        if t.old_freshness != t.new_freshness:
            lines.append(f"~ table {t.ref}: {t.old_freshness} -> {t.new_freshness}")
    return lines
