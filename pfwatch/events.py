"""The event vocabulary: everything the pure core (:mod:`pfwatch.core.fold`) consumes.

Sources (log follower, journald, file watcher, /proc poller, replay) produce these frozen
dataclasses; the core folds them into state and findings. Every event carries ``at``,
POSIX seconds (UTC) as a float: the core never reads a clock. Inputs: none. Outputs:
dataclasses, the identity of a finding (:func:`event_id_for`) and the one time format of
every JSON output (:func:`rfc3339_utc`). Errors: none. See also docs/events.md for the
names sinks emit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Basis = Literal["observed", "inferred", "predicted"]
"""How a finding is known: seen in the log or /proc, deduced from rules, or forecast."""


class _EmptyMapping(Mapping[str, str]):
    """An immutable, hashable empty mapping: a safe dataclass default."""

    def __getitem__(self, key: str) -> str:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"


EMPTY: Mapping[str, str] = _EmptyMapping()


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One classified Postfix log line.

    ``kind`` is a message-catalogue id (grammars/maillog_catalogue.py), ``"unrecognized"``
    for a Postfix line that matched nothing. ``pid`` is the pid in the syslog tag; for the
    master's child-exit warnings the child's pid is in ``fields["child_pid"]``.
    ``position`` is an opaque resume token from the source (exactly-once delivery).
    """

    at: float
    kind: str
    program: str
    instance: str
    service: str
    daemon: str
    pid: int
    fields: Mapping[str, str] = EMPTY
    source: str = ""
    line_no: int = 0
    position: str = ""


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A Postfix process as seen in /proc (or in a container's shared PID namespace)."""

    pid: int
    daemon: str
    service: str
    instance: str
    started_at: float
    argv: tuple[str, ...] = field(default=(), compare=False)
    """The command line master gave it (master.cf's command and arguments, at the last
    reload before its start); empty when not read."""


@dataclass(frozen=True, slots=True)
class ProcessTableSeen:
    """A complete poll of the live Postfix processes at ``at``."""

    at: float
    processes: tuple[ProcessInfo, ...]


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    """One master.cf service with the limits its processes run under (after ``-o``)."""

    name: str
    type: str
    daemon: str
    max_idle: float
    max_use: int
    process_limit: int
    wakeup: int
    syslog_name: str
    overrides: Mapping[str, str] = EMPTY

    @property
    def key(self) -> str:
        """The master.cf identity of the service, ``name/type``."""
        return f"{self.name}/{self.type}"


@dataclass(frozen=True, slots=True)
class TableFacts:
    """A lookup table or file list referenced from main.cf or master.cf."""

    ref: str
    type: str
    source: str | None
    compiled: str | None
    fresh: bool | None
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigFacts:
    """What the engine needs to know of one configuration snapshot."""

    config_dir: str
    digest: str
    parameters: Mapping[str, str]
    services: tuple[ServiceFacts, ...]
    tables: tuple[TableFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class TableEdit:
    """A change to a referenced table or file list, as the semantic diff saw it."""

    ref: str
    type: str
    source: str | None
    compiled: str | None
    source_changed: bool
    compiled_changed: bool
    keys_changed: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParameterDrift:
    """A main.cf parameter's value before and after (None: not set on that side).

    ``old``/``new`` are as written; ``old_expanded``/``new_expanded`` are given only
    when expansion changes them (``via`` names the edited parameters they reference).
    Secret values are ``sha256:`` short hashes.
    """

    name: str
    old: str | None
    new: str | None
    old_expanded: str | None = None
    new_expanded: str | None = None
    via: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldDrift:
    """One master.cf field (or ``-o name`` override) before and after."""

    name: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class ServiceDrift:
    """A master.cf service (``name/type``) added, removed or changed field by field."""

    service: str
    kind: str
    fields: tuple[FieldDrift, ...] = ()


@dataclass(frozen=True, slots=True)
class TableDrift:
    """A table's keys added, removed and changed, its first keys, its content hashes.

    ``keys`` is capped and empty for tables of secrets (their keys are contents too);
    ``compared`` is False when the table was too large to compare key by key.
    """

    ref: str
    kind: str
    added: int
    removed: int
    changed: int
    keys: tuple[str, ...]
    more_keys: int
    sha256_before: str | None
    sha256_after: str | None
    compared: bool = True
    secret: bool = False


@dataclass(frozen=True, slots=True)
class FileDrift:
    """A configuration file's content hash before and after (None: absent)."""

    path: str
    sha256_before: str | None
    sha256_after: str | None


@dataclass(frozen=True, slots=True)
class Drift:
    """What drifted in one change: the semantic diff carried by ``change_detected``."""

    digest_before: str
    digest_after: str
    parameters: tuple[ParameterDrift, ...] = ()
    services: tuple[ServiceDrift, ...] = ()
    tables: tuple[TableDrift, ...] = ()
    files: tuple[FileDrift, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON object of docs/events.md (``drift``)."""
        return {
            "digest_before": self.digest_before,
            "digest_after": self.digest_after,
            "parameters": [_fields_of(p) for p in self.parameters],
            "services": [
                {"service": s.service, "kind": s.kind, "fields": [_fields_of(f) for f in s.fields]}
                for s in self.services
            ],
            "tables": [_fields_of(t) for t in self.tables],
            "files": [_fields_of(f) for f in self.files],
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> Drift:
        """Rebuild what :meth:`to_json` wrote."""
        return Drift(
            digest_before=doc["digest_before"],
            digest_after=doc["digest_after"],
            parameters=tuple(
                ParameterDrift(**{**p, "via": tuple(p.get("via", ()))})
                for p in doc.get("parameters", ())
            ),
            services=tuple(
                ServiceDrift(s["service"], s["kind"], tuple(FieldDrift(**f) for f in s["fields"]))
                for s in doc.get("services", ())
            ),
            tables=tuple(
                TableDrift(**{**t, "keys": tuple(t["keys"])}) for t in doc.get("tables", ())
            ),
            files=tuple(FileDrift(**f) for f in doc.get("files", ())),
        )


def _fields_of(item: Any) -> dict[str, Any]:
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name in item.__slots__
        for value in (getattr(item, name),)
    }


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """The configuration on disk changed at ``at`` (one debounced burst of edits)."""

    at: float
    change_id: str
    files: tuple[str, ...]
    parameters: tuple[str, ...]
    services: tuple[str, ...]
    tables: tuple[TableEdit, ...]
    facts: ConfigFacts
    summary: tuple[str, ...] = ()
    drift: Drift | None = None
    """Old and new values (None when the old snapshot is not known, e.g. after a restart
    that lost it, or for a what-if)."""


@dataclass(frozen=True, slots=True)
class ConfigSnapshotTaken:
    """The first (baseline) snapshot of a configuration; no change implied."""

    at: float
    facts: ConfigFacts


@dataclass(frozen=True, slots=True)
class ConfigError:
    """A configuration file failed to parse; the last good snapshot stays in force."""

    at: float
    path: str
    line: int
    column: int
    message: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed; lets the core turn silence into inferred exits."""

    at: float


Event = LogEvent | ProcessTableSeen | ConfigChanged | ConfigSnapshotTaken | ConfigError | Tick


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the core concluded, named as in docs/events.md.

    ``data`` holds JSON-ready values only (str, int, float, bool, None, lists, dicts).
    """

    name: str
    at: float
    basis: Basis
    data: Mapping[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=8192)  # a log's moments repeat: many lines share a second
def rfc3339_utc(at: float) -> str:
    """POSIX seconds -> ``2026-11-22T00:45:00.123456Z``: RFC 3339, UTC, microseconds.

    The one time format of machine output (event lines, ``/status``, ``explain --json``,
    ``check --json``); fields that carry it may stand beside ``*_epoch`` POSIX seconds.
    """
    # isoformat is strftime's text here (years 1000-9999), at a fraction of its cost
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def from_rfc3339(text: str) -> float:
    """The inverse of :func:`rfc3339_utc`: an RFC 3339 string -> POSIX seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def jsonable(value: Any) -> Any:
    """``value`` with sets sorted into lists, tuples as lists and NaN/infinity as None."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(item) for item in value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; "never" and "unknown" are null
    return value


def event_id_for(finding: Finding) -> str:
    """The stable identity of a finding: same input, same id (24 hex digits).

    A digest of the finding's name, time, basis and data, which the engine derives from
    the source position or change id it came from, so a replay of the same input yields
    the same id and a consumer can drop repeats. An explicit ``data["event_id"]`` wins.
    """
    explicit = finding.data.get("event_id")
    if isinstance(explicit, str) and explicit:
        return explicit
    canonical = json.dumps(
        [finding.name, repr(float(finding.at)), finding.basis, jsonable(finding.data)],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


MOMENT_KEYS: frozenset[str] = frozenset(
    {
        "at",
        "ts",
        "now",
        "earliest",
        "latest",
        "expected",
        "gone_by",
        "until",
        "exit_latest",
        "p50",
        "p90",
    }
)
"""Keys of JSON output that hold a moment, besides every key ending in ``_at``."""

MOMENT_MAPS: frozenset[str] = frozenset({"service_live"})
"""Keys of JSON output whose value maps names to moments."""


def is_moment_key(key: str) -> bool:
    """Does a JSON field of this name hold a moment (written with :func:`rfc3339_utc`)?"""
    return key in MOMENT_KEYS or key.endswith("_at")


def _moment(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return rfc3339_utc(float(value)) if math.isfinite(value) else None
    return value


_PLAIN = (str, int, bool)
_OTHER, _AT, _AT_MAP = 0, 1, 2
_KEY_KINDS: dict[str, int] = {}
"""What :func:`machine_times` does with a key's value, per key seen (a document has a few
dozen distinct keys, repeated in every row)."""


def _key_kind(key: str) -> int:
    kind = _AT if is_moment_key(key) else _AT_MAP if key in MOMENT_MAPS else _OTHER
    if len(_KEY_KINDS) < 4096:  # keys are field names: bounded unless a map is keyed by data
        _KEY_KINDS[key] = kind
    return kind


def machine_times(value: Any) -> Any:
    """JSON-ready ``value`` with every moment as an RFC 3339 UTC string.

    The one time scheme of pfwatch's JSON output: a field named ``at``, ``ts``, ``now``,
    ``*_at`` or a window bound (``earliest``, ``latest``, ``expected``, ``gone_by``,
    ``until``, ``exit_latest``, ``p50``, ``p90``) holding POSIX seconds becomes
    :func:`rfc3339_utc` of them;
    non-finite moments ("never") become null; durations (``*_seconds``, ``max_idle``)
    stay numbers. Sets become sorted lists (as :func:`jsonable`).
    """
    if value is None or type(value) in _PLAIN:
        return value  # what jsonable returns for them, without its checks
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        kinds = _KEY_KINDS
        for raw_key, item in value.items():
            key = raw_key if type(raw_key) is str else str(raw_key)
            kind = kinds.get(key)
            if kind is None:
                kind = _key_kind(key)
            if kind == _AT:
                if type(item) is float:  # the common case, without _moment's checks
                    out[key] = rfc3339_utc(item) if math.isfinite(item) else None
                else:
                    out[key] = _moment(item)
            elif item is None or type(item) in _PLAIN:
                out[key] = item
            elif kind == _AT_MAP and isinstance(item, Mapping):
                out[key] = {str(name): _moment(when) for name, when in item.items()}
            else:
                out[key] = machine_times(item)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return jsonable([machine_times(item) for item in jsonable(value)])
    return jsonable(value)
