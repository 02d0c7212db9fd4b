"""Routing caches: when a change that reaches daemons through trivial-rewrite's answers
is fully live.

trivial-rewrite answers rewrite and resolve requests (transport, next hop, address
class). After the last trivial-rewrite that ran the old configuration is gone, its clients
may still reuse an old answer: the rewrite/resolve clients (qmgr, cleanup, smtpd, ...) for
30 s, smtpd's LRU resolve cache for the life of the smtpd process
(:mod:`pfwatch.knowledge.caches`). So such a change is live for new answers when the old
trivial-rewrite is gone (the *cutoff*), and fully live 30 s later and once every smtpd that
may have cached an answer from it (born before the cutoff) has exited too.
Pure. Inputs: the state and a change. Outputs: cutoffs, horizons, the cache window.
Errors: none.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from pfwatch.core.records import Impact, RoutingWindow
from pfwatch.core.state import Change, EngineState
from pfwatch.knowledge.caches import lifetime_holders, reply_reuse_seconds, timed_caches
from pfwatch.knowledge.daemons import TIMINGS

REWRITER = "trivial-rewrite"
UNKNOWN = "*"
ROUTING_MODES = frozenset({"restart", "table_check_10s"})
QMGRS = frozenset({"qmgr", "oqmgr"})
PROC_START_SLACK = 1.0
"""/proc start times are relative to a boot time known to whole seconds."""


def rule_text() -> str:
    """The expert's sentence for the 30 s reuse, with its sources."""
    sources = "; ".join(c.source for c in timed_caches())
    return (
        f"qmgr may reuse its last routing answer for the same address for up to "
        f"{reply_reuse_seconds():g} s, and cleanup and smtpd their last rewrite and "
        f"resolve answers ({sources})"
    )


def routing_affected(change: Change) -> bool:
    """Whether the change reaches daemons through trivial-rewrite's answers. An edit of
    unknown parameters (``*``) is not assumed to be one; it gets an advisory instead."""
    if any(n.action == "restart" and n.satisfied_at is not None for n in change.needs):
        return False  # postfix stop/start: no process, so no cache, of the old one is left
    return any(
        i.daemon == REWRITER and i.mode in ROUTING_MODES and i.via != (UNKNOWN,)
        for i in change.impacts
    )


def holds_lifetime_cache(impact: Impact) -> bool:
    """An affected service whose processes keep trivial-rewrite's answers for life."""
    return impact.daemon in lifetime_holders() and impact.mode == "restart"


def cutoff(change: Change) -> tuple[float, float] | None:
    """When the last trivial-rewrite running the old configuration was gone, as
    ``(earliest, latest)`` (a log stamp leaves a second open; the latest is the time it
    can last have answered); None while one may still be running."""
    low, high = [change.at], [change.at]
    # a trivial-rewrite running at a postmap notices the rebuilt table within its periodic
    # check (src/trivial-rewrite/trivial-rewrite.c:539-548) and only then restarts
    checks = [
        TIMINGS["trivial_rewrite_table_check"][0]
        for i in change.impacts
        if i.daemon == REWRITER and i.mode == "table_check_10s"
    ]
    check = max(checks, default=0.0)
    for need in change.needs:
        if need.satisfied_at is None:
            return None
        low.append(need.satisfied_at)
        high.append(need.satisfied_at + (check if need.action == "postmap" else 0.0))
    for key in change.stale:
        if key.split("/")[1] != REWRITER:
            continue
        row = change.resolved.get(key)
        if row is None:
            return None
        low.append(row.at if row.earliest is None else row.earliest)
        high.append(row.at if row.latest is None else row.latest)
    for entry in change.unseen:
        if entry.daemon != REWRITER:
            continue
        if entry.resolved_at is None:
            return None
        low.append(entry.resolved_at)
        high.append(entry.resolved_at)
    return max(low), max(high)


def horizon(change: Change, impact: Impact) -> float:
    """Processes of ``impact`` born before this are stale: the change time, or for smtpd
    under a routing change the cutoff (infinite while the old trivial-rewrite may run)."""
    if not (routing_affected(change) and holds_lifetime_cache(impact)):
        return change.at
    if change.routing_cache:
        return change.routing_cache.gone_by
    found = cutoff(change)
    return math.inf if found is None else found[1]


def open_window(gone_at: float, gone_by: float) -> RoutingWindow:
    """The cache window once the old trivial-rewrite is known gone in [gone_at, gone_by]:
    new answers from ``earliest``, no old answer reused after ``latest``."""
    reuse = reply_reuse_seconds()
    return RoutingWindow(
        earliest=gone_at,
        gone_by=gone_by,
        latest=gone_by + reuse,
        reuse_seconds=reuse,
        rule=rule_text(),
        source="; ".join(c.source for c in timed_caches()),
    )


def end_at_restart(state: EngineState, change: Change) -> None:
    """A postfix reload or start after the change (and its postmap) ends the window early:
    qmgr is restarted at once (it never exits by itself, src/qmgr/qmgr.c:741-742), so its
    cached answers are gone, and new clients reach only new trivial-rewrite processes; old
    clients exit after their current session (src/master/single_server.c:257-262) and are
    tracked as stale where affected. A log stamp leaves a second open (end = stamp + the
    resolution); a qmgr that /proc shows born after the change proves the reload even when
    its log line was not read."""
    window = change.routing_cache
    if not window or window.ended_by:
        return
    done = [n.satisfied_at for n in change.needs if n.satisfied_at is not None]
    start = max([change.at, *done])
    res = state.resolution()
    # a stamp (or a /proc start time, whose boot-time base is whole seconds) in the same
    # second as the change may be after it: counted. The price: a restart in fact just
    # before the edit (same second) ends the window too early; documented approximation
    stamps = [r.at for r in state.reloads]
    stamps += [m.started_at for m in state.master.values()]
    ends = [t + res for t in stamps if t + res >= start]
    ends += [
        float(p.born_at) + PROC_START_SLACK
        for p in [*state.processes.values(), *state.history]
        if p.daemon in QMGRS
        and p.born_exact
        and p.born_at is not None
        and p.born_at + PROC_START_SLACK >= start
    ]
    if not ends:
        return
    end = min(ends)
    if end < window.latest:
        change.routing_cache = replace(
            window,
            latest=max(window.gone_by, end),
            ended_by="postfix reload or start: qmgr restarted with an empty cache",
        )


def pending(state: EngineState, change: Change) -> bool:
    """Whether an old answer may still be reused somewhere (window not over yet)."""
    if not routing_affected(change):
        return False
    window = change.routing_cache
    return not window or state.now < window.latest


def prediction_row(change: Change, rows: list[dict[str, Any]], now: float) -> dict[str, Any] | None:
    """The cache window as a prediction row, bounded by the stale trivial-rewrite rows."""
    if not routing_affected(change):
        return None
    reuse = reply_reuse_seconds()
    window = change.routing_cache
    if window:
        if now >= window.latest:
            return None
        earliest = window.earliest
        latest: float | None = window.latest
        expected: float | None = latest
    else:
        mine = [r for r in rows if r["daemon"] == REWRITER]

        def bound(name: str) -> float | None:
            values: list[float | None] = [r[name] for r in mine]
            known = [float(v) for v in values if v is not None]
            return max([change.at, *known]) if len(known) == len(values) else None

        low, high, mid = bound("earliest"), bound("latest"), bound("expected")
        earliest = low if low is not None else change.at
        latest = high + reuse if high is not None else None
        expected = mid + reuse if mid is not None else None
    return {
        "process": "",
        "label": "routing caches",
        "service": "",
        "daemon": "qmgr, cleanup, smtpd",
        "pid": 0,
        "inferred": True,
        "sessions": 0,
        "uses": 0,
        "earliest": earliest,
        "latest": latest,
        "expected": expected,
        "rule": f"after the old trivial-rewrite is gone, {rule_text()}",
    }
