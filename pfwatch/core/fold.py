"""The pure core: ``fold(state, event) -> Step(state, findings)``.

Time enters only through ``event.at``; nothing here reads a clock, a file or a socket.
:func:`fold` copies the state first and is pure; :func:`step` mutates the state it is
given (for long replays where copying per line would dominate) and returns the findings.
Inputs: :class:`~pfwatch.core.state.EngineState` and one event of
:data:`pfwatch.events.Event`. Outputs: :class:`Step`. Errors:
:class:`pfwatch.errors.InvariantBroken` for an event of an unknown type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pfwatch.core import confirm, observe, stale
from pfwatch.core import processes as pm
from pfwatch.core.state import EngineState
from pfwatch.errors import InvariantBroken
from pfwatch.events import (
    ConfigChanged,
    ConfigError,
    ConfigSnapshotTaken,
    Event,
    Finding,
    LogEvent,
    ProcessTableSeen,
    Tick,
)
from pfwatch.knowledge.daemons import spec_for

_RANK = {ConfigSnapshotTaken: 0, ConfigChanged: 0, ConfigError: 0, LogEvent: 1}


def fold_order(event: Event) -> tuple[float, int]:
    """The sort key of events gathered from several sources before they are folded.

    By time; at the same time configuration events first, then log lines, then /proc
    tables and ticks (a /proc poll or tick stamped at the moment of an edit saw the
    edit's file already). ``list.sort`` is stable, so equal keys keep arrival order. Every
    front sorts with this key (watch's loop, check's history, wait's and lab's polls).
    """
    return event.at, _RANK.get(type(event), 2)


@dataclass(frozen=True, slots=True)
class Step:
    """The new state and what was concluded on the way."""

    state: EngineState
    findings: tuple[Finding, ...]


def fold(state: EngineState, event: Event) -> Step:
    """Fold one event into a copy of ``state``."""
    new = state.copy()
    return Step(new, tuple(step(new, event)))


def step(state: EngineState, event: Event) -> list[Finding]:
    """Fold one event into ``state`` in place; return the findings."""
    findings: list[Finding] = []
    at = event.at
    if isinstance(event, LogEvent):
        if state.log_began_at is None:
            state.log_began_at = at
        if state.coarse_timestamps and at != int(at):
            state.coarse_timestamps = False
    if at > state.now:  # noqa: PLR1730 - max() costs a call per event
        state.now = at
    due = state.next_due
    if due is None or state.now >= due:  # pm.advance's own test, saving a call per event
        pm.advance(state, state.now, findings)
    if isinstance(event, LogEvent):
        observe.apply_log(state, event, findings)
        if event.kind in observe.BIRTH_EVIDENCE and state.changes:
            key = f"{event.instance}/{event.daemon}/{event.pid}"
            stale.reconsider(state, key)
            if event.kind in observe.SESSION_OPEN:
                stale.session_opened(state, key, at)
        if event.kind == "table_changed":
            confirm.table_rebuilt(state, event)
        elif state.changes and (
            event.kind == "message_activity" or event.kind in observe.SESSION_CLOSE
        ):
            _queue_file_progress(state, event)
    elif isinstance(event, ProcessTableSeen):
        first = state.proc_seen_at is None
        dated = observe.apply_proc(state, event, findings)
        if state.changes:
            for key in dated:
                stale.reconsider(state, key)
        if first:
            stale.proc_became_visible(state)
    elif isinstance(event, ConfigChanged):
        state.next_due = None  # limits may have changed: recompute every deadline
        if state.facts is None:
            state.facts = event.facts
            observe.refresh_services(state)
        confirm.open_change(state, event, findings)
    elif isinstance(event, ConfigSnapshotTaken):
        state.next_due = None
        state.facts = event.facts
        observe.refresh_services(state)
    elif isinstance(event, ConfigError):
        state.config_errors += 1
        findings.append(
            Finding(
                "config_error",
                at,
                "observed",
                {
                    "path": event.path,
                    "line": event.line,
                    "column": event.column,
                    "message": event.message,
                },
            )
        )
    elif isinstance(event, Tick):
        pass
    else:
        raise InvariantBroken(f"fold: unknown event type {type(event).__name__}")
    if state.changes:
        for finding in findings:
            if finding.name == "process_started":
                stale.adopt(state, str(finding.data["process"]))
        confirm.evaluate_all(state, findings)
    return findings


def _queue_file_progress(state: EngineState, event: LogEvent) -> None:
    """A cleanup logged a queue file, or an smtpd session ended: settle what a change
    held for a transaction whose cleanup had not logged (:func:`stale.queue_file_settled`)."""
    name = spec_for(event.daemon).name
    if name == "cleanup" and event.kind == "message_activity":
        stale.queue_file_settled(state, event.fields.get("queue_id", ""), event.at)
    elif name == "smtpd" and event.kind in observe.SESSION_CLOSE:
        proc = state.processes.get(pm.process_key(event.instance, event.daemon, event.pid))
        if proc is not None and proc.last_queue_id:
            stale.queue_file_settled(state, proc.last_queue_id, event.at)


def run(state: EngineState, events: Iterable[Event]) -> list[Finding]:
    """Fold a whole stream in place (replay helper); returns every finding in order."""
    out: list[Finding] = []
    for event in events:
        found = step(state, event)
        if found:
            out.extend(found)
    return out
