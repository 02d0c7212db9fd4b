"""Track each change from detection to "live": stale processes, needs, confirmation.

A change is live for a service when no process that started before the change remains;
it is live when that holds for every affected service and no action (postmap, reload,
stop/start) is still needed. An exit known only by inference counts from its latest
possible time, and only once ``settings.margin`` seconds more have passed (log delivery
delay); exits seen in /proc or in -v lines count at once. Pure. Inputs: state, events.
Outputs: state mutations and findings. Errors: none.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from pfwatch.core import interval, predict, routing_cache
from pfwatch.core.changes import analyse, needs_actions
from pfwatch.core.records import Prediction, Resolution
from pfwatch.core.stale import STALE_MODES, adopt_cache_holders, argv_stale_until, select_stale
from pfwatch.core.state import Change, EngineState, Process
from pfwatch.events import Basis, ConfigChanged, Finding, LogEvent


def open_change(state: EngineState, ev: ConfigChanged, findings: list[Finding]) -> Change:
    """Register a change: analyse it, pick its stale processes, report change_detected."""
    analysis = analyse(ev, state.facts)
    change = Change(
        change_id=ev.change_id,
        at=ev.at,
        files=list(ev.files),
        parameters=list(ev.parameters),
        services=list(ev.services),
        tables=list(ev.tables),
        digest=ev.facts.digest,
        impacts=analysis.impacts,
        needs=analysis.needs,
        advisories=analysis.advisories,
        drift=ev.drift.to_json() if ev.drift is not None else None,
    )
    for other in state.changes.values():
        _supersede_parts(other, ev)
    state.facts = ev.facts
    select_stale(state, change)
    state.changes[change.change_id] = change
    pred = predict.change_prediction(state, change)
    summary = _summary(pred)
    change.prediction = summary
    change.live_interval = interval.live_interval(
        state, change, pred["stale"], bool(pred["blocked_by"])
    )
    change.interval_at = state.now
    findings.append(
        Finding(
            "change_detected",
            ev.at,
            "observed",
            {
                "change_id": change.change_id,
                "files": change.files,
                "parameters": change.parameters,
                "services": change.services,
                "tables": [t.ref for t in change.tables],
                "affected": [
                    {
                        "service": i.service,
                        "type": i.type,
                        "daemon": i.daemon,
                        "mode": i.mode,
                        "why": i.why,
                    }
                    for i in change.impacts
                ],
                "stale_processes": [r["label"] for r in pred["stale"]],
                "needs": needs_actions(change.needs),
                "needs_detail": [need.as_dict() for need in change.needs],
                "advisories": change.advisories,
                "drift": change.drift,
                **summary.as_dict(),
                "live_interval": change.live_interval,
            },
        )
    )
    return change


def _parts(change: Change) -> set[str]:
    """What a change consists of: each table, parameter and master.cf service it edits."""
    tables = {t.ref for t in change.tables}
    table_params = {p for t in change.tables for p in t.parameters}
    params = {p for p in change.parameters if p not in table_params}
    if not change.tables and not change.services and not params:
        params = {"*"}  # an edit of unknown parameters
    return (
        {f"table:{t}" for t in tables}
        | {f"parameter:{p}" for p in params}
        | {f"service:{s}" for s in change.services}
    )


def _covered_by(ev: ConfigChanged) -> set[str]:
    """The parts of earlier changes that ``ev`` brings up to date: tables it rebuilt."""
    return {f"table:{t.ref}" for t in ev.tables if t.compiled_changed}


def _supersede_parts(other: Change, ev: ConfigChanged) -> None:
    """A later change that rebuilds a table satisfies the earlier change's postmap for it.
    It supersedes only the parts it covers; the earlier change counts as superseded (and
    may be hidden) only when every part is covered."""
    rebuilt = [t for t in ev.tables if t.compiled_changed]
    for index, need in enumerate(other.needs):
        if need.action != "postmap" or need.satisfied_at is not None:
            continue
        hits = [t for t in rebuilt if need.target in (t.source, t.ref)]
        if not hits:
            continue
        other.needs[index] = need.satisfied(ev.at, ev.change_id)
        for edit in hits:
            part = f"table:{edit.ref}"
            if part not in other.superseded_parts:
                other.superseded_parts.append(part)
    if other.superseded_parts and _parts(other) <= set(other.superseded_parts) | _covered_by(ev):
        other.superseded_by = ev.change_id


def _find_exited(state: EngineState, key: str) -> Process | None:
    return next((p for p in reversed(state.history) if p.key == key), None)


def evaluate(state: EngineState, change: Change, findings: list[Finding]) -> None:
    """Update needs, resolve exits, and report prediction updates and ``change_live``."""
    if change.status == "live":
        return
    _satisfy_needs(state, change)
    waiting = _resolve_stale(state, change)
    if routing_cache.routing_affected(change) and not change.routing_cache:
        cut = routing_cache.cutoff(change)
        if cut is not None:
            change.routing_cache = routing_cache.open_window(*cut)
            if adopt_cache_holders(state, change, cut[1]):
                waiting = _resolve_stale(state, change) or waiting
    routing_cache.end_at_restart(state, change)
    waiting = waiting or routing_cache.pending(state, change)
    _service_times(state, change)
    pred = predict.change_prediction(state, change)
    summary = _summary(pred)
    if needs_actions(change.needs):
        change.status = "needs_action"
    elif pred["stale"] or waiting or _unpolled_since(state, change):
        change.status = "pending"
    else:
        _declare_live(state, change, findings)
        return
    _report_moves(state, change, pred, summary, findings)


def _unpolled_since(state: EngineState, change: Change) -> bool:
    """/proc shows this Postfix, but no poll taken after the edit has been folded yet: a
    daemon born between the last poll and the edit, not logged yet, is stale and known to
    nobody until that poll lists it. (Log only, such a daemon is covered by the unseen
    bound of :func:`pfwatch.core.stale.select_stale` only while the log is young.)"""
    seen = state.proc_seen_at
    return seen is not None and seen < change.at and state.proc_authoritative()


def _resolve_stale(state: EngineState, change: Change) -> bool:
    """Resolve the exits of stale processes; True while an inferred exit awaits its margin."""
    margin, now = state.settings.margin, state.now
    waiting = False
    for key in change.stale:
        if key in change.resolved:
            continue
        proc = state.processes.get(key)
        if proc is not None and key in change.until_session_end and not proc.session_open:
            change.resolved[key] = Resolution(
                at=proc.last_session_end_at or now,
                basis="observed",
                label=proc.label,
                reason="session_end",
                how="its session ended; it checks its tables before the next one and "
                "restarts if they changed",
            )
            continue
        if proc is not None:
            cap = change.stale_until.get(key)
            if cap is not None and now >= cap + margin:
                change.resolved[key] = Resolution(
                    at=cap,
                    basis="inferred",
                    label=proc.label,
                    reason="table_changed",
                    how="trivial-rewrite checks its tables every 10 s",
                )
            continue
        gone = _find_exited(state, key)
        if gone is None or gone.exited_at is None:
            change.resolved[key] = Resolution(
                at=now, basis="inferred", label=key, reason="unknown", how="no longer tracked"
            )
            continue
        latest = gone.exit_latest if gone.exit_latest is not None else gone.exited_at
        if gone.exit_basis != "observed" and now < latest + margin:
            waiting = True  # inferred: wait until even a delayed log line would have arrived
            continue
        # never before the last moment it was seen alive: a /proc exit lies between the
        # last poll that saw the process and the first that did not (``latest`` is that
        # one); a log line stamped S was written in [S, S + resolution), so the exit it
        # announces may be that late
        at = max(gone.exited_at, latest)
        change.resolved[key] = Resolution(
            at=at,
            basis=cast("Basis", gone.exit_basis or "inferred"),
            label=gone.label,
            reason=gone.exit_reason or "unknown",
            how=gone.exit_note,
            earliest=gone.exited_at if gone.exit_basis == "observed" else at,
            latest=latest,
        )
    for index, entry in enumerate(change.unseen):
        if entry.resolved_at is not None:
            continue
        if entry.until is None:
            reload = _reload_after(state, change.at)
            if reload is not None:
                change.unseen[index] = replace(entry, resolved_at=reload)
        elif now >= entry.until + margin:
            change.unseen[index] = replace(entry, resolved_at=entry.until)
    return waiting


INTERVAL_EVERY = 1.0
"""Seconds between recomputations of a pending change's interval (a simulation)."""


def _report_moves(
    state: EngineState,
    change: Change,
    pred: dict[str, Any],
    summary: Prediction,
    findings: list[Finding],
) -> None:
    """Report ``change_prediction_updated`` when something an operator acts on moved: the
    stale processes, the needed actions, the no-traffic bound (between two known times),
    or the interval's p50 or p90 (by more than 2 s and a quarter of the time left). A bound
    that is only unknown while a session is open does not count."""
    now = state.now
    old = change.prediction
    structural = old is None or (old.stale_count, old.needs) != (
        summary.stale_count,
        summary.needs,
    )
    fresh = change.live_interval
    if structural or now - change.interval_at >= INTERVAL_EVERY:
        fresh = interval.live_interval(state, change, pred["stale"], bool(pred["blocked_by"]))
        change.interval_at = now
    was = old.predicted_live_at if old is not None else None
    new = summary.predicted_live_at
    moved = was is not None and new is not None and abs(was - new) >= 1.0
    if structural or moved or _interval_moved(change.live_interval, fresh, now):
        change.prediction = summary
        change.live_interval = fresh
        findings.append(
            Finding(
                "change_prediction_updated",
                now,
                "predicted",
                {
                    "change_id": change.change_id,
                    **summary.as_dict(),
                    "stale_processes": [r["label"] for r in pred["stale"]],
                    "live_interval": fresh,
                },
            )
        )


def _interval_moved(old: dict[str, Any], new: dict[str, Any], now: float) -> bool:
    for key in ("p50", "p90"):
        a, b = old.get(key), new.get(key)
        if (a is None) != (b is None):
            return True
        if a is None or b is None or max(a, b) <= now + 2.0:
            continue
        if abs(a - b) >= max(2.0, 0.25 * (max(a, b) - now)):
            return True
    return False


def refresh_prediction(state: EngineState, change: Change) -> None:
    """Store the prediction as of ``state.now`` in ``change.prediction`` (one-shot reports
    read it; the events update it only when something to act on moved)."""
    change.prediction = _summary(predict.change_prediction(state, change))


def _summary(pred: dict[str, Any]) -> Prediction:
    return Prediction(
        predicted_live_at=pred["predicted_live_at"],
        earliest_live_at=pred["earliest_live_at"],
        expected_live_at=pred["expected_live_at"],
        stale_count=len(pred["stale"]),
        needs=tuple(sorted(set(pred["blocked_by"]))),
    )


def _reload_stamp(state: EngineState, at: float) -> float | None:
    """The stamp of the first reload that may have come after ``at``. A log stamp covers
    a whole second, so a reload stamped in the second of the edit counts (``edit; postfix
    reload`` in a script); the same approximation as the routing-cache window."""
    res = state.resolution()
    stamps = [r.at for r in state.reloads if r.at >= at or r.at + res > at]
    return min(stamps) if stamps else None


def _reload_after(state: EngineState, at: float) -> float | None:
    """The earliest moment of the first reload after ``at`` (see :func:`_reload_stamp`)."""
    stamp = _reload_stamp(state, at)
    return None if stamp is None else max(stamp, at)


def _satisfy_needs(state: EngineState, change: Change) -> None:
    for index, need in enumerate(change.needs):
        if need.satisfied_at is not None:
            continue
        if need.action == "reload":
            stamp = _reload_stamp(state, change.at)
            if stamp is not None:
                # logged at a whole second: the reload came after the edit and at the
                # latest at the end of its stamp's second
                reload = max(stamp, change.at)
                latest = max(stamp + state.resolution(), change.at)
                change.needs[index] = need.satisfied(latest, "postfix reload")
                argv_stale_until(state, change, reload, latest)
                continue
        if need.action in ("restart", "reload"):
            starts = [m.started_at for m in state.master.values() if m.started_at >= change.at]
            if starts:
                change.needs[index] = need.satisfied(min(starts), "postfix start")


def table_rebuilt(state: EngineState, ev: LogEvent) -> None:
    """A "table ... has changed" line proves postmap ran: satisfy matching postmap needs."""
    path = ev.fields.get("path", "")
    for change in state.changes.values():
        for index, need in enumerate(change.needs):
            if (
                need.action == "postmap"
                and need.satisfied_at is None
                and path
                and (need.target == path or need.target.endswith(path))
            ):
                change.needs[index] = need.satisfied(
                    ev.at, f'postmap ({path} rebuilt: "table has changed" logged)'
                )


def _service_times(state: EngineState, change: Change) -> None:
    for impact in change.impacts:
        name = f"{impact.service}/{impact.type}"
        if name in change.service_live or impact.mode not in STALE_MODES:
            continue
        keys = [k for k in change.stale if k.split("/")[1] == impact.daemon]
        unseen = [u.resolved_at for u in change.unseen if u.daemon == impact.daemon]
        if any(k not in change.resolved for k in keys) or None in unseen:
            continue
        times = [change.at] + [change.resolved[k].at for k in keys]
        times += [at for at in unseen if at is not None]
        change.service_live[name] = max(times)


def _declare_live(state: EngineState, change: Change, findings: list[Finding]) -> None:
    candidates: list[tuple[float, str, str, str]] = [
        (change.at, "observed", "", "nothing stale was running: the next process reads it")
    ]
    for key, row in change.resolved.items():
        candidates.append((row.at, row.basis, key, f"{row.label} exited ({row.reason}): {row.how}"))
    for entry in change.unseen:
        if entry.resolved_at is not None:
            candidates.append(
                (entry.resolved_at, "inferred", "", f"{entry.daemon}[unseen]: {entry.why}")
            )
    for need in change.needs:
        if need.satisfied_at is not None:
            candidates.append((need.satisfied_at, "observed", "", need.satisfied_by))
    at, basis, key, why = max(candidates, key=lambda c: c[0])
    window = change.routing_cache
    if window and window.latest > at:
        # the deciding exit stays the one that changed the answers; the time is the end
        # of the window in which a client could still reuse an old one
        at, basis = window.latest, "inferred"
        why = f"{why}; then {window.rule}"
    change.status, change.live_at, change.live_basis = "live", at, basis
    change.made_live_by, change.claimed_at = key or why, state.now
    findings.append(
        Finding(
            "change_live",
            state.now,
            "observed" if basis == "observed" else "inferred",
            {
                "change_id": change.change_id,
                "live_at": at,
                "basis": basis,
                "made_live_by": key,
                "explanation": why,
                "claimed_at": state.now,
                "services": change.service_live,
                "routing_cache": window.as_dict() if window else None,
                "advisories": change.advisories,
            },
        )
    )


def evaluate_all(state: EngineState, findings: list[Finding]) -> None:
    for change in state.changes.values():
        if change.status != "live":
            evaluate(state, change, findings)
