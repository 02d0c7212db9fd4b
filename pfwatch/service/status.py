"""What ``pfwatch watch`` shows on /metrics and /status, computed from the engine state.

Inputs: the :class:`~pfwatch.core.state.EngineState` (read under the loop's lock), the
digest of the configuration on disk, the health of each source, the outbox's state flag,
the last emitted event records. Outputs: a :class:`~pfwatch.sinks.metrics.MetricsSnapshot`
(the adapter :class:`~pfwatch.sinks.metrics.PfwatchMetrics` scrapes) and the JSON-ready
/status document (pure functions); :class:`SourceHealth`, which turns a source going
down or coming back into ``source_unavailable`` / ``source_recovered``; the
:class:`LastEvents` sink for /status. Errors: none.

A change is pending while its status is not ``live`` and no later change superseded it.
Each master.cf service it affects (or that runs one of its stale processes) is predicted
live at the change's ``predicted_live_at`` (the last stale process's latest exit, or a
documented cache lifetime after it), None when that is unknown or the change needs an
action first (it will not go live by itself).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, cast

from pfwatch.core import predict
from pfwatch.core.changes import needs_actions
from pfwatch.core.report import change_row, process_row
from pfwatch.core.state import Change, EngineState
from pfwatch.events import Finding, machine_times
from pfwatch.sinks.events_json import event_record
from pfwatch.sinks.metrics import MetricsSnapshot, PendingChange
from pfwatch.sources.base import SourceStatus

STATUS_SCHEMA = "pfwatch.status/1"


def pending_changes(state: EngineState) -> list[Change]:
    """Changes not live yet and not superseded, oldest first."""
    return sorted(
        (c for c in state.changes.values() if c.status != "live" and not c.superseded_by),
        key=lambda c: (c.at, c.change_id),
    )


def master_service_of(state: EngineState, service: str, daemon: str) -> str:
    """``name/type`` of a process's master.cf service (``service/unknown`` if not found)."""
    if state.facts is not None:
        for facts in state.facts.services:
            if facts.name == service:
                return facts.key
        for facts in state.facts.services:
            if facts.daemon == daemon and facts.name == daemon:
                return facts.key
    return f"{service or daemon}/unknown"


def _pending_metric(state: EngineState, change: Change) -> PendingChange:
    prediction = predict.change_prediction(state, change)
    blocked = bool(prediction["blocked_by"])
    when = None if blocked else prediction.get("predicted_live_at")
    services: dict[str, float | None] = {}
    for impact in change.impacts:
        if impact.service and impact.type:
            services[f"{impact.service}/{impact.type}"] = when
    for row in prediction["stale"]:
        services.setdefault(master_service_of(state, str(row["service"]), str(row["daemon"])), when)
    return PendingChange(
        change_id=change.change_id,
        detected_at=change.at,
        services=services,
        needs=tuple(sorted(set(prediction["blocked_by"]) | set(needs_actions(change.needs)))),
    )


def metrics_snapshot(
    state: EngineState,
    *,
    now: float,
    digest: str | None,
    sources: Mapping[str, SourceStatus],
    state_ok: bool,
) -> MetricsSnapshot:
    """The metrics view of the engine at ``now``."""
    pending: list[PendingChange] = []
    stale_keys: dict[str, set[str]] = {}
    for change in pending_changes(state):
        pending.append(_pending_metric(state, change))
        for key in change.stale:
            proc = state.processes.get(key)
            if proc is None or key in change.resolved:
                continue
            service = master_service_of(state, proc.service, proc.daemon)
            stale_keys.setdefault(service, set()).add(key)
    reloads = [r.at for r in state.reloads]
    return MetricsSnapshot(
        now=now,
        config_digest=digest,
        pending=tuple(pending),
        stale_processes={service: len(keys) for service, keys in stale_keys.items()},
        last_reload_at=max(reloads) if reloads else None,
        sources=dict(sources),
        state_ok=state_ok,
    )


def status_document(
    state: EngineState,
    *,
    now: float,
    digest: str | None,
    sources: Mapping[str, SourceStatus],
    state_ok: bool,
    last_events: Iterable[Mapping[str, Any]],
    watch: Mapping[str, Any],
    instances: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The /status JSON: pending changes with predictions, live processes, last events."""
    alive = sorted(state.processes.values(), key=lambda p: (p.first_seen_at, p.key))
    document = {
        "schema": STATUS_SCHEMA,
        "now": now,
        "watch": dict(watch),
        "config_digest": digest,
        "state_ok": state_ok,
        "sources": {
            name: {
                "up": status.up,
                "error": status.error,
                "lag_seconds": status.lag_seconds,
                "lag_bytes": status.lag_bytes,
                "last_line_at": status.last_line_at,
            }
            for name, status in sorted(sources.items())
        },
        "pending_changes": [
            {**change_row(state, change), "drift": change.drift}
            for change in pending_changes(state)
        ],
        "processes": [process_row(state, proc) for proc in alive],
        "last_reload_at": max((r.at for r in state.reloads), default=None),
        "last_events": list(last_events),
    }
    if instances is not None:
        document["instances"] = instances
    return cast(dict[str, Any], machine_times(document))


def instance_section(
    state: EngineState, *, name: str, config_dir: str, digest: str | None
) -> dict[str, Any]:
    """One instance of a multi-instance host in /status (the top level is the primary's)."""
    alive = sorted(state.processes.values(), key=lambda p: (p.first_seen_at, p.key))
    return {
        "instance": name,
        "config_dir": config_dir,
        "config_digest": digest,
        "pending_changes": [
            {**change_row(state, change), "drift": change.drift}
            for change in pending_changes(state)
        ],
        "processes": [process_row(state, proc) for proc in alive],
        "last_reload_at": max((r.at for r in state.reloads), default=None),
        "postfix_version": next(
            (
                m.version
                for m in sorted(state.master.values(), key=lambda m: -m.started_at)
                if m.version
            ),
            None,
        ),
    }


class SourceHealth:
    """The status of each input; transitions become events (docs/events.md §2.3)."""

    def __init__(self) -> None:
        self.statuses: dict[str, SourceStatus] = {}
        self._down: dict[str, str] = {}

    def update(
        self, name: str, error: str | None, now: float, status: SourceStatus | None = None
    ) -> list[Finding]:
        """Record ``name`` as up (``error`` None) or down; returns the findings to emit."""
        self.statuses[name] = status or SourceStatus(up=error is None, error=error)
        was = self._down.get(name)
        if error is not None and was is None:
            self._down[name] = error
            return [
                Finding("source_unavailable", now, "observed", {"source": name, "message": error})
            ]
        if error is None and was is not None:
            del self._down[name]
            return [Finding("source_recovered", now, "observed", {"source": name})]
        return []


class LastEvents:
    """A sink remembering the last event records, for /status."""

    def __init__(self, size: int = 50) -> None:
        self.records: deque[dict[str, Any]] = deque(maxlen=size)

    def emit(self, finding: Finding) -> None:
        self.records.append(event_record(finding))

    def close(self) -> None:
        pass
