"""The other Postfix instances of a multi-instance host, as ``watch`` follows them.

``watch`` keeps its primary instance where it always kept it (the engine state, tracker
and /proc scanner of :class:`~pfwatch.service.loop.WatchService`); each other instance
(:mod:`pfwatch.config.instances`) gets a :class:`Pipeline` of its own: a configuration
tracker on its directory, a /proc scanner of the children of its master (the pid in its
``queue_directory``'s ``pid/master.pid``) and an engine state. A
:class:`~pfwatch.config.instances.Router` sends each log line to the pipeline of its
program prefix; a line of no followed instance is dropped. With one instance none of this
exists and ``watch`` runs as it always did.

The engine states of the other instances are committed with the primary's, under
``instances`` in the same state document; their configuration snapshots are not stored
(after a restart, an edit of another instance made while pfwatch was down is not reported:
the first look is its baseline).

Inputs: the instances, the stored state document, the service's options. Outputs:
:class:`Pipeline` per other instance, the state document with theirs, a finding stamped
with its instance. Errors: a stored state of an instance that cannot be read is reported
(``state_not_restored``) and that instance starts fresh.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pfwatch.config.instances import InstanceSpec
from pfwatch.core.state import EngineState, from_json
from pfwatch.errors import StateError
from pfwatch.events import Finding
from pfwatch.service import startup
from pfwatch.service.config_tracker import ConfigTracker
from pfwatch.service.state_doc import state_document
from pfwatch.sources.procfs import ProcScanner

INSTANCES_KEY = "instances"
"""Where the state document keeps the other instances' engine states."""


@dataclass(eq=False)
class Pipeline:
    """One other instance: its configuration tracker, /proc scanner and engine state."""

    spec: InstanceSpec
    tracker: ConfigTracker
    scanner: ProcScanner | None
    state: EngineState
    config_position: Any = None
    config_problem: str | None = None
    next_proc: float = 0.0
    dirty: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.spec.name

    def position_key(self) -> str:
        return f"config:{self.name}"

    def adopted(self) -> None:
        """Follow a configuration change of queue_directory or syslog_name."""
        if self.scanner is not None:
            self.scanner.configure(*startup.instance_of(self.tracker))


def pipelines(
    others: Sequence[InstanceSpec],
    stored: Mapping[str, Any] | None,
    *,
    proc: bool,
    log: Any,
) -> list[Pipeline]:
    """A pipeline per other instance, its engine state restored from ``stored`` (the
    whole state document of the last commit) when it holds one."""
    saved = (stored or {}).get(INSTANCES_KEY) or {}
    found: list[Pipeline] = []
    for spec in others:
        state = EngineState()
        if spec.name in saved:
            try:
                state = from_json(json.dumps(saved[spec.name]))
            except (StateError, ValueError, KeyError, TypeError) as exc:
                log.warning("state_not_restored", instance=spec.name, error=str(exc))
        state.settings.history_limit = startup.HISTORY_LIMIT
        tracker = ConfigTracker(spec.config_dir, None)
        scanner = ProcScanner(spec.queue_directory, spec.config_dir, spec.name) if proc else None
        found.append(Pipeline(spec, tracker, scanner, state))
    return found


def state_with_others(primary: EngineState, others: Sequence[Pipeline]) -> dict[str, Any]:
    """The state document of the primary, with the other instances' under ``instances``."""
    doc = state_document(primary)
    if others:
        doc[INSTANCES_KEY] = {p.name: state_document(p.state) for p in others}
    return doc


def stamped(findings: list[Finding], instance: str) -> list[Finding]:
    """Each finding with the ``instance`` it is about (kept when it names one already)."""
    return [
        f if "instance" in f.data else replace(f, data={**f.data, "instance": instance})
        for f in findings
    ]
