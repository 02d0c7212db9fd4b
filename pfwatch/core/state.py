"""The engine state: plain dataclasses, copyable and JSON-serialisable.

The watch service persists this state in SQLite between runs, so every field is plain
data (str, float, int, bool, None, lists, dicts of those) except the current
:class:`~pfwatch.events.ConfigFacts` and a change's typed records (frozen dataclasses,
:mod:`pfwatch.core.records`), which :func:`to_json`/:func:`from_json` convert, and the
derived :class:`Lookups` (not persisted). Inputs: none. Outputs: :class:`EngineState`,
:class:`Process`, :class:`Change` (its records: :mod:`pfwatch.core.records`),
:class:`ClientTracker`, :class:`Settings`, :func:`to_json`, :func:`from_json`.
Errors: :class:`pfwatch.errors.StateError` for a JSON document that is not a state.
"""

from __future__ import annotations

import copy
import json
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, Literal, get_args

from pfwatch.core.records import (
    Impact,
    MasterStart,
    Need,
    Prediction,
    Reload,
    Resolution,
    RoutingWindow,
    Unseen,
)
from pfwatch.errors import StateError
from pfwatch.events import ConfigFacts, ServiceFacts, TableEdit, TableFacts
from pfwatch.knowledge.daemons import TIMINGS

STATE_VERSION = 1
_SERVICE_FIELDS = tuple(f for f in fields(ServiceFacts) if f.name != "overrides")
_TABLE_FIELDS = tuple(f for f in fields(TableFacts) if f.name != "parameters")


@dataclass
class Settings:
    """Tunables of the inference; defaults are Postfix's defaults and documented margins."""

    margin: float = 2.0
    """Seconds added before an exit known only by inference is acted on (log delay)."""
    max_idle: float = TIMINGS["max_idle_default"][0]
    max_use: int = int(TIMINGS["max_use_default"][0])
    ipc_idle: float = TIMINGS["ipc_idle_default"][0]
    ipc_ttl: float = TIMINGS["ipc_ttl_default"][0]
    proc_fresh: float = 5.0
    """A /proc poll younger than this makes /proc the authority on exits."""
    history_limit: int = 100_000
    """Exited processes kept for the timeline (oldest dropped first)."""


@dataclass(slots=True)
class Process:
    """One Postfix process (or an inferred one: ``pid == 0``) and what is known of it."""

    key: str
    instance: str
    service: str
    daemon: str
    pid: int
    first_seen_at: float
    last_activity_at: float
    born_at: float | None = None
    born_exact: bool = False
    generation: str = ""
    session_open: bool = False
    session_started_at: float | None = None
    last_session_end_at: float | None = None
    sessions: int = 0
    uses: int = 0
    last_queue_id: str = ""
    queue_opened_at: float | None = None
    """smtpd: when its open session logged ``QUEUEID: client=`` for ``last_queue_id`` (the
    cleanup serving it was connected by then: src/smtpd/smtpd.c mail_open_stream)."""
    verbose: bool = False
    draining: bool = False
    drain_reason: str = ""
    clients_gone_at: float | None = None
    clients: int = 0
    """Connected clients of a multi/event server, counted from its -v connection lines."""
    client_lines: bool = False
    exited_at: float | None = None
    exit_latest: float | None = None
    exit_reason: str | None = None
    exit_basis: str | None = None
    exit_note: str = ""
    inferred: bool = False
    exit_claim_at: float | None = None
    """When a log line said this process exits while /proc still showed it: the exit
    counts only once /proc confirms it (anyone may write such a line)."""
    exit_claim_reason: str = ""
    exit_claim_note: str = ""
    exit_claim_drains: bool = False
    release: str = ""
    """The Postfix release its master logged when it was born ("" when not known): the
    process reads the parameters of that release (an upgrade mid-log leaves processes of
    the old release running until they exit)."""

    @property
    def alive(self) -> bool:
        return self.exited_at is None

    @property
    def label(self) -> str:
        """``daemon[pid]`` as in the log, or ``daemon[?]`` for an inferred process."""
        return f"{self.daemon}[{self.pid}]" if self.pid else f"{self.daemon}[?]"


@dataclass
class ClientTracker:
    """Clients holding connections to trivial-rewrite (or another multi-server).

    ``clients`` maps a client process key to ``[connected_at, last_use]``; the client lets
    go ``ipc_idle`` after its last use (src/global/clnt_stream.c:174-182, 226-242).
    """

    clients: dict[str, list[float]] = field(default_factory=dict)
    zero_since: float | None = None
    disconnects: int = 0
    last_use: float | None = None
    holders_gone_at: float | None = None
    """When the last smtpd (anvil's permanent client) exited."""
    last_gone: float | None = None
    """The latest let-go or exit of a client since the last request."""
    queue_lines: dict[str, float] = field(default_factory=dict)
    """qmgr's last line per queue id: tells its active-queue (resolving) line apart."""


ChangeStatus = Literal["pending", "needs_action", "live"]
"""``needs_action``: it never goes live by itself (see its needs)."""


@dataclass
class Change:
    """One configuration change and everything predicted and confirmed about it."""

    change_id: str
    at: float
    files: list[str]
    parameters: list[str]
    services: list[str]
    tables: list[TableEdit]
    digest: str
    impacts: list[Impact] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    stale_until: dict[str, float] = field(default_factory=dict)
    until_session_end: list[str] = field(default_factory=list)
    resolved: dict[str, Resolution] = field(default_factory=dict)
    """Stale processes (by key) that no longer hold the change back."""
    unseen: list[Unseen] = field(default_factory=list)
    advisories: list[str] = field(default_factory=list)
    status: ChangeStatus = "pending"
    live_at: float | None = None
    live_basis: str | None = None
    made_live_by: str = ""
    claimed_at: float | None = None
    service_live: dict[str, float] = field(default_factory=dict)
    prediction: Prediction | None = None
    """The prediction last reported (None until the change was analysed)."""
    superseded_by: str = ""
    superseded_parts: list[str] = field(default_factory=list)
    """Files of this change that a later change covers (it re-edited or rebuilt them)."""
    routing_cache: RoutingWindow | None = None
    """The window in which trivial-rewrite's clients may reuse an old answer
    (:mod:`pfwatch.core.routing_cache`); None until the old trivial-rewrite is gone."""
    live_interval: dict[str, Any] = field(default_factory=dict)
    """The calibrated interval last reported (:mod:`pfwatch.core.interval`)."""
    interval_at: float = 0.0
    """When ``live_interval`` was last computed (at most once a second)."""
    drift: dict[str, Any] | None = None
    """What the change edited, old and new values: :meth:`pfwatch.events.Drift.to_json`
    (kept as plain data like every field here; docs/events.md ``drift``)."""


@dataclass
class Lookups:
    """Indexes over the state's processes and history for the fold's hot path.

    Derived data: neither persisted nor compared, built from the state on first use
    (:func:`pfwatch.core.processes.lookups`) and kept current by the process model.
    """

    built: bool = False
    exited_keys: set[str] = field(default_factory=set)
    """Keys of every process moved to the history (a superset: trimmed ones stay)."""
    rewriters: dict[str, dict[str, Process]] = field(default_factory=dict)
    """Live trivial-rewrite processes per instance, by key."""


@dataclass
class EngineState:
    """Everything the core knows; :func:`pfwatch.core.fold.fold` is its only writer."""

    settings: Settings = field(default_factory=Settings)
    facts: ConfigFacts | None = None
    now: float = 0.0
    log_began_at: float | None = None
    coarse_timestamps: bool = True
    proc_seen_at: float | None = None
    processes: dict[str, Process] = field(default_factory=dict)
    history: list[Process] = field(default_factory=list)
    changes: dict[str, Change] = field(default_factory=dict)
    trackers: dict[str, ClientTracker] = field(default_factory=dict)
    master: dict[str, MasterStart] = field(default_factory=dict)
    """The last master start seen per instance."""
    reloads: list[Reload] = field(default_factory=list)
    phantom_seq: int = 0
    next_due: float | None = None
    config_errors: int = 0
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    """Recent arrival times per ``instance/service`` (:mod:`pfwatch.core.interval`)."""
    lookups: Lookups = field(
        default_factory=Lookups, compare=False, repr=False, metadata={"persisted": False}
    )

    def copy(self) -> EngineState:
        """A deep copy (the state is plain data)."""
        return copy.deepcopy(self)

    def resolution(self) -> float:
        """Timestamp resolution of the log: 1 s for classic syslog, 0 when sub-second."""
        return 1.0 if self.coarse_timestamps else 0.0

    def proc_authoritative(self) -> bool:
        """Whether a recent /proc poll, not inference, decides which processes live."""
        seen = self.proc_seen_at
        return seen is not None and self.now - seen <= self.settings.proc_fresh


def persisted_fields() -> tuple[Field[Any], ...]:
    """The fields of :class:`EngineState` that a saved state holds (not the lookups)."""
    return tuple(f for f in fields(EngineState) if f.metadata.get("persisted", True))


def table_edit_from_dict(data: dict[str, Any]) -> TableEdit:
    """A change's table edit as the state document stores it (``asdict`` of it)."""
    return TableEdit(
        **{
            **data,
            "keys_changed": tuple(data.get("keys_changed", ())),
            "parameters": tuple(data.get("parameters", ())),
        }
    )


def records_to_plain(value: dict[str, MasterStart] | list[Reload]) -> Any:
    """The state's master starts or reloads as the document stores them."""
    if isinstance(value, dict):
        return {key: start.as_dict() for key, start in value.items()}
    return [reload.as_dict() for reload in value]


def change_to_dict(change: Change) -> dict[str, Any]:
    """A change as the state document stores it: its plain fields as they are (shallow:
    the document is serialised at once), its typed records as their dicts, and an empty
    dict for a prediction or routing window not known yet (as earlier versions wrote)."""
    doc = dict(vars(change))
    doc["tables"] = [asdict(table) for table in change.tables]
    doc["impacts"] = [impact.as_dict() for impact in change.impacts]
    doc["needs"] = [need.as_dict() for need in change.needs]
    doc["resolved"] = {key: row.as_dict() for key, row in change.resolved.items()}
    doc["unseen"] = [entry.as_dict() for entry in change.unseen]
    doc["prediction"] = change.prediction.as_dict() if change.prediction else {}
    doc["routing_cache"] = change.routing_cache.as_dict() if change.routing_cache else {}
    return doc


def change_from_dict(key: str, data: dict[str, Any]) -> Change:
    """The inverse of :func:`change_to_dict`; reads what earlier versions wrote."""
    if data.get("status") not in get_args(ChangeStatus):
        raise ValueError(f"change {key}: unknown status {data.get('status')!r}")
    prediction, window = data.get("prediction"), data.get("routing_cache")
    return Change(
        **{
            **data,
            "tables": [table_edit_from_dict(t) for t in data["tables"]],
            "impacts": [Impact.from_dict(i) for i in data.get("impacts", [])],
            "needs": [Need.from_dict(n) for n in data.get("needs", [])],
            "resolved": {k: Resolution.from_dict(r) for k, r in data.get("resolved", {}).items()},
            "unseen": [Unseen.from_dict(u) for u in data.get("unseen", [])],
            "prediction": Prediction.from_dict(prediction) if prediction else None,
            "routing_cache": RoutingWindow.from_dict(window) if window else None,
        }
    )


def facts_to_dict(facts: ConfigFacts) -> dict[str, Any]:
    """A JSON-ready dict of :class:`ConfigFacts` (field by field: ``asdict`` deep-copies
    a thousand parameters for every snapshot)."""
    return {
        "config_dir": facts.config_dir,
        "digest": facts.digest,
        "parameters": dict(facts.parameters),
        "services": [
            {
                **{f.name: getattr(service, f.name) for f in _SERVICE_FIELDS},
                "overrides": dict(service.overrides),
            }
            for service in facts.services
        ],
        "tables": [
            {
                **{f.name: getattr(table, f.name) for f in _TABLE_FIELDS},
                "parameters": list(table.parameters),
            }
            for table in facts.tables
        ],
    }


def facts_from_dict(data: dict[str, Any]) -> ConfigFacts:
    """The inverse of :func:`facts_to_dict`."""
    services = tuple(
        ServiceFacts(**{**s, "overrides": dict(s.get("overrides", {}))})
        for s in data.get("services", [])
    )
    tables = tuple(
        TableFacts(**{**t, "parameters": tuple(t.get("parameters", ()))})
        for t in data.get("tables", [])
    )
    return ConfigFacts(
        config_dir=data["config_dir"],
        digest=data["digest"],
        parameters=dict(data.get("parameters", {})),
        services=services,
        tables=tables,
    )


def process_plain(doc: dict[str, Any]) -> dict[str, Any]:
    """A process's fields as the state document stores them: ``release`` and
    ``queue_opened_at`` only when known (documents written before they existed, or
    without their cases, read and write as before)."""
    if not doc.get("release"):
        doc.pop("release", None)
    if doc.get("queue_opened_at") is None:
        doc.pop("queue_opened_at", None)
    return doc


def to_json(state: EngineState) -> str:
    """Serialise the whole state to one JSON document."""
    doc: dict[str, Any] = {"version": STATE_VERSION}
    for f in persisted_fields():
        value = getattr(state, f.name)
        if f.name == "facts":
            doc["facts"] = facts_to_dict(value) if value is not None else None
        elif f.name in ("settings",):
            doc[f.name] = asdict(value)
        elif f.name == "changes":
            doc[f.name] = {k: change_to_dict(v) for k, v in value.items()}
        elif f.name == "processes":
            doc[f.name] = {k: process_plain(asdict(v)) for k, v in value.items()}
        elif f.name == "trackers":
            doc[f.name] = {k: asdict(v) for k, v in value.items()}
        elif f.name == "history":
            doc[f.name] = [process_plain(asdict(p)) for p in value]
        elif f.name in ("master", "reloads"):
            doc[f.name] = records_to_plain(value)
        else:
            doc[f.name] = value
    return json.dumps(doc, sort_keys=True)


def from_json(text: str) -> EngineState:
    """Rebuild a state written by :func:`to_json`."""
    try:
        doc = json.loads(text)
        if doc.get("version") != STATE_VERSION:
            raise StateError(f"state version {doc.get('version')!r} is not {STATE_VERSION}")
        state = EngineState(settings=Settings(**doc["settings"]))
        state.facts = facts_from_dict(doc["facts"]) if doc.get("facts") else None
        state.processes = {k: Process(**v) for k, v in doc["processes"].items()}
        state.history = [Process(**v) for v in doc["history"]]
        state.changes = {k: change_from_dict(k, v) for k, v in doc["changes"].items()}
        state.trackers = {k: ClientTracker(**v) for k, v in doc["trackers"].items()}
        for name in (
            "now",
            "log_began_at",
            "coarse_timestamps",
            "proc_seen_at",
            "phantom_seq",
            "next_due",
            "config_errors",
        ):
            setattr(state, name, doc[name])
        state.master = {k: MasterStart.from_dict(v) for k, v in doc["master"].items()}
        state.reloads = [Reload.from_dict(r) for r in doc["reloads"]]
        state.arrivals = doc.get("arrivals", {})
    except StateError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"engine state document is unusable: {exc}") from exc
    return state
