"""Prediction: when each stale process will exit, and when a change will be fully live.

For a process: earliest and latest exit if no new traffic reaches it (the idle-only
bound), and the expected exit when its recent traffic continues (it may then live up to
``max_use`` connections). For a change: the same bounds over its stale processes and the
unseen processes it must allow for. Pure. Inputs: the state. Outputs: dicts of plain data.
Errors: none.
"""

from __future__ import annotations

from typing import Any

from pfwatch.core import processes as pm
from pfwatch.core import routing_cache
from pfwatch.core.state import Change, EngineState, Process
from pfwatch.knowledge.daemons import TIMINGS, spec_for


def exit_window(state: EngineState, proc: Process) -> dict[str, Any]:
    """``{earliest, latest, expected, rule}`` for a live process; None = unbounded."""
    spec = spec_for(proc.daemon)
    idle, max_use = pm.limits(state, proc.service, proc.daemon)
    now = state.now
    if spec.skeleton == "master" or (idle is None and max_use is None):
        why = spec.override_source or spec.pickup_source
        return {
            "earliest": None,
            "latest": None,
            "expected": None,
            "rule": f"{spec.name} never exits by itself ({why}); postfix reload needed",
        }
    if spec.name == "pickup":
        facts = pm.service_facts(state, proc.service, proc.daemon)
        wakeup = float(facts.wakeup) if facts and facts.wakeup else TIMINGS["pickup_wakeup"][0]
        born = proc.born_at if proc.born_at is not None else now
        latest = born + (max_use or 100) * wakeup
        return {
            "earliest": now,
            "latest": latest,
            "expected": latest,
            "rule": f"pickup counts every master wakeup ({wakeup:g} s) as a use; exits "
            f"after max_use {max_use} (src/master/trigger_server.c:291-292,797)",
        }
    if proc.session_open:
        return {
            "earliest": now,
            "latest": None,
            "expected": None,
            "rule": "serving a session now; its idle timer starts when it ends",
        }
    deadline = pm.idle_deadline(state, proc)
    if deadline is None:
        ipc_idle, _ = pm.ipc_limits(state)
        if spec.skeleton in ("multi", "event") and idle is not None:
            tracker = state.trackers.get(proc.instance)
            if tracker is not None and tracker.clients:
                let_go = max(pm.client_let_go(state, k, v[1]) for k, v in tracker.clients.items())
                latest = let_go + idle + state.resolution()
                return {
                    "earliest": let_go,
                    "latest": latest,
                    "expected": latest,
                    "rule": f"clients let go {ipc_idle:g} s (ipc_idle) after their last "
                    f"request, then {idle:g} s (max_idle) with no client "
                    "(src/global/clnt_stream.c:174-182; multi_server.c:335-336)",
                }
        return {
            "earliest": None,
            "latest": None,
            "expected": None,
            "rule": f"{spec.name}: exit time cannot be bounded from what is visible",
        }
    estimate, latest, rule = deadline
    earliest = estimate - state.resolution() / 2
    if max_use and spec.skeleton == "single" and proc.uses >= max_use - 1:
        earliest = now
    expected = latest
    if spec.skeleton == "single" and idle and max_use:
        born = proc.born_at if proc.born_at is not None else proc.first_seen_at
        rate = proc.sessions / max(now - born, 1.0)
        if rate * idle >= 1.0:
            # steady traffic keeps re-arming the idle timer: it lives until max_use
            expected = max(latest, now + max(max_use - proc.uses, 0) / rate)
    return {"earliest": max(earliest, now), "latest": latest, "expected": expected, "rule": rule}


def change_prediction(state: EngineState, change: Change) -> dict[str, Any]:
    """Bounds on when ``change`` will be fully live, from its remaining stale processes."""
    rows: list[dict[str, Any]] = []
    for key in change.stale:
        if key in change.resolved:
            continue
        proc = state.processes.get(key)
        if proc is None:
            gone = next((p for p in reversed(state.history) if p.key == key), None)
            if gone is None or gone.exited_at is None:
                continue
            # exited by inference, waiting for the margin before it counts
            latest = gone.exit_latest if gone.exit_latest is not None else gone.exited_at
            rows.append(
                {
                    "process": key,
                    "label": gone.label,
                    "service": gone.service,
                    "daemon": gone.daemon,
                    "pid": gone.pid,
                    "inferred": gone.inferred,
                    "sessions": gone.sessions,
                    "uses": gone.uses,
                    "earliest": gone.exited_at,
                    "latest": latest,
                    "expected": latest,
                    "rule": gone.exit_note,
                }
            )
            continue
        window = exit_window(state, proc)
        cap = change.stale_until.get(key)
        if cap is not None:
            window = {
                **window,
                "latest": cap if window["latest"] is None else min(window["latest"], cap),
                "expected": cap if window["expected"] is None else min(window["expected"], cap),
            }
        rows.append(
            {
                "process": key,
                "label": proc.label,
                "service": proc.service,
                "daemon": proc.daemon,
                "pid": proc.pid,
                "inferred": proc.inferred,
                "sessions": proc.sessions,
                "uses": proc.uses,
                **window,
            }
        )
    for unseen in change.unseen:
        if unseen.resolved_at is None:
            rows.append(
                {
                    "process": "",
                    "label": f"{unseen.daemon}[unseen]",
                    "service": unseen.service,
                    "daemon": unseen.daemon,
                    "pid": 0,
                    "inferred": True,
                    "sessions": 0,
                    "uses": 0,
                    "earliest": change.at,
                    "latest": unseen.until,
                    "expected": unseen.until,
                    "rule": unseen.why,
                }
            )
    blocked = any(n.satisfied_at is None for n in change.needs)
    cache = routing_cache.prediction_row(change, rows, state.now)
    caches = [cache] if cache is not None else []

    def bound(name: str) -> float | None:
        if blocked:
            return None
        values: list[float | None] = [r[name] for r in [*rows, *caches]]
        known = [v for v in values if v is not None]
        if len(known) != len(values):
            return None
        return max([change.at, *known])

    return {
        "stale": rows,
        "caches": caches,
        "earliest_live_at": bound("earliest"),
        "predicted_live_at": bound("latest"),
        "expected_live_at": bound("expected"),
        "blocked_by": [n.action for n in change.needs if n.satisfied_at is None],
    }
