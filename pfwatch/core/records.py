"""The typed records of the engine state: what a change carries (impacts, needs,
resolved exits, processes not seen yet, its prediction summary and its routing-cache
window) and the master starts and reloads seen.

Every record is a frozen dataclass; the engine replaces one rather than editing it. Each
is stored in the engine state as the dict its :meth:`as_dict` returns (the keys and
values the dict-based engine wrote, so state documents of earlier versions load
unchanged) and read back with :meth:`from_dict`. Inputs: none. Outputs: :class:`Impact`,
:class:`Need`, :class:`Resolution`, :class:`Unseen`, :class:`Prediction`,
:class:`RoutingWindow`, :class:`MasterStart`, :class:`Reload` and the ``Literal``
statuses. Errors: ``from_dict`` raises
ValueError, KeyError or TypeError on a malformed record (:func:`pfwatch.core.state.from_json`
turns them into :class:`~pfwatch.errors.StateError`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from pfwatch.events import Basis

ImpactMode = Literal["advisory", "immediate", "table_check", "table_check_10s", "restart", "reload"]
"""How an affected service picks a change up, from the least to the most disruptive."""

NeedAction = Literal["postmap", "reload", "restart"]
"""Actions without which a change never goes live, in the order they must happen."""


def _member(value: Any, kind: Any, what: str) -> Any:
    if value not in get_args(kind):
        raise ValueError(f"unknown {what} {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Impact:
    """One master.cf service a change reaches, and how its processes pick the change up."""

    service: str
    type: str
    daemon: str
    mode: ImpactMode
    via: tuple[str, ...]
    """The parameters (or table, ``master.cf``, ``*`` = unknown) that reach it."""
    why: str
    source: str
    max_idle: float
    max_use: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "type": self.type,
            "daemon": self.daemon,
            "mode": self.mode,
            "via": list(self.via),
            "why": self.why,
            "source": self.source,
            "max_idle": self.max_idle,
            "max_use": self.max_use,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Impact:
        return cls(
            **{
                **data,
                "mode": _member(data["mode"], ImpactMode, "impact mode"),
                "via": tuple(data["via"]),
            }
        )


@dataclass(frozen=True, slots=True)
class Need:
    """One action a change needs; ``satisfied_at`` is set when it was seen done.

    Serialised as a dict with these keys (engine state, ``needs_detail`` of findings and
    documents); :meth:`from_dict` reads state written by earlier versions unchanged.
    """

    action: NeedAction
    why: str
    source: str
    target: str = ""
    satisfied_at: float | None = None
    satisfied_by: str = ""

    def satisfied(self, at: float, by: str) -> Need:
        """This need, done at ``at`` by ``by``."""
        return replace(self, satisfied_at=at, satisfied_by=by)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "why": self.why,
            "source": self.source,
            "target": self.target,
            "satisfied_at": self.satisfied_at,
            "satisfied_by": self.satisfied_by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Need:
        _member(data.get("action"), NeedAction, "need action")
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Resolution:
    """How and when one stale process stopped holding a change back.

    ``at`` is the time the change may count from (never before the process was last seen
    alive); ``earliest``/``latest`` bound an exit that the log or /proc saw, and are absent
    for a resolution without an exit (a session end, a table check, a lost process).
    """

    at: float
    basis: Basis
    label: str
    reason: str
    how: str
    earliest: float | None = None
    latest: float | None = None

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "at": self.at,
            "basis": self.basis,
            "label": self.label,
            "reason": self.reason,
            "how": self.how,
        }
        if self.earliest is not None:
            doc["earliest"] = self.earliest
        if self.latest is not None:
            doc["latest"] = self.latest
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resolution:
        return cls(**{**data, "basis": _member(data["basis"], Basis, "resolution basis")})


@dataclass(frozen=True, slots=True)
class Unseen:
    """Processes of a service that may run without having logged yet (the log began too
    late, master keeps one running, or an smtpd transaction has a cleanup that logs only
    at the end of DATA): gone by ``until`` (None: only a reload, or for ``queue_id`` the
    cleanup's first line or the session's end, settles them)."""

    service: str
    daemon: str
    until: float | None
    why: str
    resolved_at: float | None = None
    queue_id: str = ""
    """The queue file whose cleanup has not logged yet ("" for the other reasons)."""

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "service": self.service,
            "daemon": self.daemon,
            "until": self.until,
            "why": self.why,
            "resolved_at": self.resolved_at,
        }
        if self.queue_id:
            doc["queue_id"] = self.queue_id
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unseen:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Prediction:
    """The summary of a change's prediction last reported (``change_detected``,
    ``change_prediction_updated``): bounds on when it is fully live, how many processes
    are stale, and which actions block it."""

    predicted_live_at: float | None
    earliest_live_at: float | None
    expected_live_at: float | None
    stale_count: int
    needs: tuple[NeedAction, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "predicted_live_at": self.predicted_live_at,
            "earliest_live_at": self.earliest_live_at,
            "expected_live_at": self.expected_live_at,
            "stale_count": self.stale_count,
            "needs": list(self.needs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        needs = tuple(_member(n, NeedAction, "need action") for n in data["needs"])
        return cls(**{**data, "needs": needs})


@dataclass(frozen=True, slots=True)
class RoutingWindow:
    """The window in which trivial-rewrite's clients may reuse an old routing answer
    (:mod:`pfwatch.core.routing_cache`): new answers from ``earliest``, the old
    trivial-rewrite gone by ``gone_by``, no old answer reused after ``latest``."""

    earliest: float
    gone_by: float
    latest: float
    reuse_seconds: float
    rule: str
    source: str
    holders: tuple[str, ...] = ()
    """smtpd processes born before ``gone_by``: they may keep an old answer for life."""
    ended_by: str = ""
    """Why the window ended before ``gone_by`` + the reuse time ("" = it did not)."""

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "earliest": self.earliest,
            "gone_by": self.gone_by,
            "latest": self.latest,
            "reuse_seconds": self.reuse_seconds,
            "rule": self.rule,
            "source": self.source,
            "holders": list(self.holders),
        }
        if self.ended_by:
            doc["ended_by"] = self.ended_by
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingWindow:
        return cls(**{**data, "holders": tuple(data.get("holders", ()))})


@dataclass(frozen=True, slots=True)
class MasterStart:
    """A Postfix master of one instance logged its start (``daemon started``)."""

    pid: int
    started_at: float
    version: str = ""
    """The release the master logged (``daemon started -- version X``), "" when not."""

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"pid": self.pid, "started_at": self.started_at}
        if self.version:
            doc["version"] = self.version
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MasterStart:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Reload:
    """A ``postfix reload`` of one instance, at the stamp of the master's log line."""

    instance: str
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {"instance": self.instance, "at": self.at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reload:
        return cls(**data)
