"""Start-up of ``pfwatch watch``: the state database, what it remembers, the inputs.

Inputs: the state directory, the configuration directory, a structlog logger. Outputs:
the open :class:`~pfwatch.store.sqlite.StateStore` (or None when the directory is
unusable: pfwatch then runs from memory) with the findings that say so
(``state_error``, ``state_reset``); the restored engine state, change tracker and
source positions; the log classifier and /proc scanner for the configuration.
Errors: :class:`pfwatch.errors.UsageError` when another pfwatch holds the state
directory; everything else is reported and pfwatch starts fresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfwatch.config.snapshot import Snapshot, snapshot_from_json
from pfwatch.core.state import EngineState, from_json
from pfwatch.errors import StateError, UsageError
from pfwatch.events import Finding
from pfwatch.service.config_tracker import ConfigTracker
from pfwatch.sources.procfs import ProcScanner

if TYPE_CHECKING:
    from pfwatch.maillog.reader import LogClassifier
    from pfwatch.store.sqlite import StateStore

# The classifier and the state store are imported where they are used: ``check`` starts
# up through here and reads neither without a log or a state directory.

HISTORY_LIMIT = 500
"""Exited processes the service keeps in its state: enough for /status, and the state is
serialised with every commit (2000 cost ~20 MB of RSS after a million-line replay)."""


@dataclass
class Restored:
    """What a previous run committed (empty on a first start)."""

    state: EngineState
    tracker: ConfigTracker
    positions: dict[str, Any]


def open_store(state_dir: Path, log: Any) -> tuple[StateStore | None, list[Finding]]:
    """The state database (exclusive), or None with a ``state_error`` finding."""
    from pfwatch.store.outbox import state_error_finding, state_reset_finding  # noqa: PLC0415
    from pfwatch.store.sqlite import StateStore  # noqa: PLC0415

    now = time.time()
    try:
        store = StateStore.open(state_dir, exclusive=True)
    except StateError as exc:
        if "another pfwatch" in str(exc):  # store.lock: the directory is taken
            raise UsageError(str(exc)) from exc
        log.error("state_unusable", error=str(exc))
        return None, [state_error_finding(exc, now, str(state_dir))]
    reset = state_reset_finding(store, now)
    if reset is None:
        return store, []
    log.warning("state_reset", path=str(store.path), kept_as=str(store.recovered_from))
    return store, [reset]


def restore(store: StateStore | None, config_dir: Path, log: Any) -> Restored:
    """Engine state, last snapshot, change sequence and positions of the last commit."""
    state = EngineState()
    positions: dict[str, Any] = {}
    snapshot: Snapshot | None = None
    if store is not None:
        try:
            positions = store.positions()
            stored_state = store.engine_state()
            if stored_state is not None:
                state = from_json(json.dumps(stored_state))
            last = store.last_snapshot()
            if last is not None:
                snapshot = snapshot_from_json(json.loads(last.json))
        except (StateError, ValueError, KeyError, TypeError) as exc:
            log.warning("state_not_restored", error=str(exc))
            state, positions, snapshot = EngineState(), {}, None
    state.settings.history_limit = HISTORY_LIMIT
    config = positions.get("config")
    seq = int(config.get("seq", 0)) if isinstance(config, dict) else 0
    return Restored(state, ConfigTracker(config_dir, snapshot, seq), positions)


def classifier_for(tracker: ConfigTracker, others: Sequence[ConfigTracker] = ()) -> LogClassifier:
    """A classifier knowing master.cf's ``-o syslog_name=`` service names (of every
    instance of a multi-instance host)."""
    from pfwatch.maillog.reader import LogClassifier  # noqa: PLC0415 - see the imports

    syslog: dict[str, str] = {}
    for each in (tracker, *others):
        if each.current is None:
            continue
        for service in each.current.services:
            name = service.overrides.get("syslog_name")
            if name:
                syslog.setdefault(name, service.name)
    return LogClassifier(syslog_services=syslog, coalesce_activity=True)


def instance_of(tracker: ConfigTracker) -> tuple[str, str]:
    """(queue_directory, instance name = first component of syslog_name)."""
    return (
        tracker.parameter("queue_directory", "/var/spool/postfix"),
        tracker.parameter("syslog_name", "postfix").split("/")[0],
    )


def scanner_for(tracker: ConfigTracker, config_dir: Path) -> ProcScanner:
    """The /proc poller of this configuration's Postfix."""
    queue_dir, instance = instance_of(tracker)
    return ProcScanner(queue_dir, config_dir, instance)
