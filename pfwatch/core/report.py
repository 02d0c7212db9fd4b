"""The explain document: processes, reloads and changes as one JSON-ready dict.

Built from the engine state after a replay plus the findings it produced; both the
``--json`` output and the rich narrative (:mod:`pfwatch.sinks.narrative`) read it, so they
always agree. Schema: docs/explain-json.md (``pfwatch.explain/1``). Pure. Inputs: state,
findings, log summary. Outputs: a dict of JSON values. Errors: none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pfwatch.core import predict
from pfwatch.core.changes import needs_actions
from pfwatch.core.state import Change, EngineState, Process
from pfwatch.events import Finding

SCHEMA = "pfwatch.explain/1"


def process_row(state: EngineState, proc: Process) -> dict[str, Any]:
    """One process of the timeline."""
    row: dict[str, Any] = {
        "process": proc.key,
        "label": proc.label,
        "instance": proc.instance,
        "service": proc.service,
        "daemon": proc.daemon,
        "pid": proc.pid,
        "inferred": proc.inferred,
        "born_at": proc.born_at,
        "born_exact": proc.born_exact,
        "first_seen_at": proc.first_seen_at,
        "last_activity_at": proc.last_activity_at,
        "last_session_end_at": proc.last_session_end_at,
        "sessions": proc.sessions,
        "verbose": proc.verbose,
        "exited_at": proc.exited_at,
        "exit_latest": proc.exit_latest,
        "exit_reason": proc.exit_reason,
        "basis": proc.exit_basis,
        "explanation": proc.exit_note,
        "clients_gone_at": proc.clients_gone_at,
        "started_under": _generation(state, proc),
        "predicted_exit": None,
    }
    if proc.alive:
        row["basis"] = "alive"
        row["predicted_exit"] = predict.exit_window(state, proc)
    return row


def _generation(state: EngineState, proc: Process) -> str | None:
    """The last change before the process started ("" = the baseline; None = unknown)."""
    if proc.born_at is None:
        return None
    before = [c for c in state.changes.values() if c.at <= proc.born_at]
    return max(before, key=lambda c: c.at).change_id if before else ""


def change_row(state: EngineState, change: Change) -> dict[str, Any]:
    """One change: what it touched, what it needs, when it went live and why."""
    stale = []
    for key in change.stale:
        proc = state.processes.get(key) or next(
            (p for p in reversed(state.history) if p.key == key), None
        )
        resolved = change.resolved.get(key)
        stale.append(
            {
                "process": key,
                "label": proc.label if proc else key,
                "service": proc.service if proc else "",
                "daemon": proc.daemon if proc else key.split("/")[1],
                # when the log or /proc saw it go; the live claim may be later
                "exited_at": (
                    (resolved.at if resolved.earliest is None else resolved.earliest)
                    if resolved
                    else None
                ),
                "exit_reason": resolved.reason if resolved else None,
                "basis": resolved.basis if resolved else None,
                "explanation": resolved.how if resolved else "",
            }
        )
    made = change.made_live_by
    made_row = None
    if made in change.resolved:
        made_row = {"process": made, **change.resolved[made].as_dict()}
    elif made:
        made_row = {
            "process": "",
            "label": "",
            "how": made,
            "at": change.live_at,
            "basis": change.live_basis,
            "reason": "",
        }
    tables = [t.ref for t in change.tables]
    return {
        "change_id": change.change_id,
        "changed_at": change.at,
        "file": change.files[0] if change.files else None,
        "files": change.files,
        "parameters": change.parameters,
        "tables": tables,
        "services": change.services,
        "affected": [impact.as_dict() for impact in change.impacts],
        "needs": needs_actions(change.needs),
        "needs_detail": [need.as_dict() for need in change.needs],
        "status": change.status,
        "live_at": change.live_at,
        "basis": change.live_basis,
        "claimed_at": change.claimed_at,
        "made_live_by": made_row,
        "stale_processes": stale,
        "unseen": [entry.as_dict() for entry in change.unseen],
        "service_live": change.service_live,
        "routing_cache": change.routing_cache.as_dict() if change.routing_cache else None,
        "superseded_by": change.superseded_by or None,
        "superseded_parts": change.superseded_parts,
        "prediction": predict.change_prediction(state, change) if change.status != "live" else None,
        "live_interval": change.live_interval or None if change.status != "live" else None,
        "advisories": change.advisories,
    }


MASTER_EVENTS = frozenset(
    {
        "postfix_reloaded",
        "postfix_started",
        "postfix_stopped",
        "postfix_upgraded",
        "postfix_release_unparsed",
        "config_error",
    }
)


class FindingDigest:
    """What the document keeps of the findings: counts per name and the master events.

    A replay adds its findings as they come (:meth:`extend`) instead of keeping them all.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.master_events: list[dict[str, Any]] = []

    def extend(self, findings: Iterable[Finding]) -> None:
        counts = self.counts
        for f in findings:
            counts[f.name] = counts.get(f.name, 0) + 1
            if f.name in MASTER_EVENTS:
                self.master_events.append({"name": f.name, "at": f.at, **f.data})


def build_document(
    state: EngineState,
    findings: list[Finding] | FindingDigest,
    summary: dict[str, Any] | None = None,
    *,
    lazy_rows: bool = False,
) -> dict[str, Any]:
    """The whole explain document (see docs/explain-json.md).

    ``lazy_rows``: ``processes`` is an iterator of rows made as it is consumed (a writer
    that streams them keeps a busy log's tens of MB of rows out of memory)."""
    processes = sorted(
        [*state.history, *state.processes.values()],
        key=lambda p: (p.born_at if p.born_at is not None else p.first_seen_at, p.key),
    )
    if isinstance(findings, FindingDigest):
        digest = findings
    else:
        digest = FindingDigest()
        digest.extend(findings)
    events = digest.master_events
    counts = digest.counts
    return {
        "schema": SCHEMA,
        "summary": summary or {},
        "log": {
            "first_at": state.log_began_at,
            "last_at": state.now,
            "timestamp_resolution": state.resolution(),
        },
        "settings": {
            "margin": state.settings.margin,
            "max_idle": state.settings.max_idle,
            "max_use": state.settings.max_use,
        },
        "processes": (
            (process_row(state, p) for p in processes)
            if lazy_rows
            else [process_row(state, p) for p in processes]
        ),
        "master_events": events,
        "table_restarts": [
            {"process": p.key, "label": p.label, "at": p.exited_at, "explanation": p.exit_note}
            for p in processes
            if p.exit_reason == "table_changed"
        ],
        "changes": [
            change_row(state, c) for c in sorted(state.changes.values(), key=lambda c: c.at)
        ],
        "finding_counts": counts,
    }
