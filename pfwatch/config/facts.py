"""What the engine learns of a configuration: facts of a snapshot, inputs of a change.

:func:`facts_from_snapshot` gives :class:`~pfwatch.events.ConfigFacts` (expanded
parameters, each master.cf service's effective ``max_idle``/``max_use``/process limit,
referenced tables); :func:`change_inputs` turns a :class:`~pfwatch.config.diff.ConfigDiff`
into the fields of :class:`~pfwatch.events.ConfigChanged`. Inputs: snapshots and diffs.
Outputs: event fields. Errors: none (unreadable limits fall back to Postfix's defaults).
Service limits are resolved by :mod:`pfwatch.config.services`, the one place for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath

from pfwatch.config.defaults import parameter_knowledge
from pfwatch.config.diff import ConfigDiff, TableChange, diff_lines
from pfwatch.config.services import expander_for, resolve_services
from pfwatch.config.snapshot import Snapshot, TableState
from pfwatch.events import ConfigChanged, ConfigFacts, Drift, ServiceFacts, TableEdit, TableFacts
from pfwatch.knowledge import releases

__all__ = [
    "ChangeInputs",
    "change_inputs",
    "facts_from_snapshot",
    "service_facts",
    "table_facts",
]


def service_facts(snapshot: Snapshot) -> tuple[ServiceFacts, ...]:
    """Every service's effective limits (:func:`pfwatch.config.services.resolve_service`)."""
    knowledge = parameter_knowledge(release=os.environ.get(releases.ENV_VAR))
    main_cf = str(PurePosixPath(snapshot.config_dir) / "main.cf")
    expander = expander_for(
        snapshot.parameters, snapshot.config_dir, knowledge.defaults, knowledge.raw, main_cf
    )
    return resolve_services(snapshot.services, expander)


def table_facts(table: TableState) -> TableFacts:
    """The engine's view of one referenced table."""
    return TableFacts(
        ref=table.ref.ref,
        type=table.ref.type,
        source=table.ref.source,
        compiled=table.ref.compiled[0] if table.ref.compiled else None,
        fresh=table.freshness.fresh,
        parameters=table.ref.parameters,
    )


def facts_from_snapshot(snapshot: Snapshot) -> ConfigFacts:
    """:class:`~pfwatch.events.ConfigFacts` of a snapshot (expanded parameters)."""
    return ConfigFacts(
        config_dir=snapshot.config_dir,
        digest=snapshot.digest,
        parameters=dict(snapshot.expanded),
        services=service_facts(snapshot),
        tables=tuple(table_facts(t) for t in snapshot.tables),
    )


@dataclass(frozen=True, slots=True)
class ChangeInputs:
    """The fields of :class:`~pfwatch.events.ConfigChanged` that come from a diff."""

    files: tuple[str, ...]
    parameters: tuple[str, ...]
    services: tuple[str, ...]
    tables: tuple[TableEdit, ...]
    facts: ConfigFacts
    summary: tuple[str, ...]

    def event(self, at: float, change_id: str, drift: Drift | None = None) -> ConfigChanged:
        """The engine's ``ConfigChanged`` for these inputs, edited at ``at``."""
        return ConfigChanged(
            at=at,
            change_id=change_id,
            files=self.files,
            parameters=self.parameters,
            services=self.services,
            tables=self.tables,
            facts=self.facts,
            summary=self.summary,
            drift=drift,
        )


def change_inputs(diff: ConfigDiff, new: Snapshot) -> ChangeInputs:
    """Parameters (names), services (``name/type``), TableEdits and facts of ``new``.

    A table that is newly referenced counts as a changed source; if its compiled file is
    already there and fresh, it counts as compiled too (no postmap is due for it). A table
    no longer referenced counts as neither: nothing reads it, so no postmap is due for it.
    """
    edits = tuple(
        TableEdit(
            ref=t.ref,
            type=t.type,
            source=t.source,
            compiled=t.compiled,
            source_changed=t.source_changed or t.kind == "added",
            compiled_changed=t.compiled_changed or _arrives_compiled(t),
            keys_changed=tuple(e.name for e in t.entries),
            parameters=t.parameters,
        )
        for t in diff.tables
    )
    return ChangeInputs(
        files=diff.files,
        parameters=tuple(p.name for p in diff.parameters),
        services=tuple(s.key for s in diff.services),
        tables=edits,
        facts=facts_from_snapshot(new),
        summary=tuple(diff_lines(diff)),
    )


def _arrives_compiled(table: TableChange) -> bool:
    """A newly referenced table whose compiled file exists and is newer than its source."""
    return (
        table.kind == "added"
        and table.compiled is not None
        and table.new_freshness in ("fresh", "source-missing")
    )
