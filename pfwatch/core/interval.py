"""Calibrated live-time intervals: when a change will be live, as the traffic goes on.

For each stale process the exit is simulated under the traffic its service has seen
lately (a Poisson process whose rate is drawn, per run, from what a recent long and a
recent short window support: a burst widens the interval instead of narrowing it), going
on for a random time per run (:data:`TRAFFIC_PERSISTENCE`, fitted on recorded trials). A
single-server process (smtpd, cleanup, ...) takes a share of its service's arrivals: each
re-arms its idle timer (``max_idle``) and uses up one of its ``max_use`` connections; it
exits when its idle timer runs out or its uses are spent. A multi-server
(trivial-rewrite) exits ``max_idle`` after its last client let go (``ipc_idle`` after the
last request) or, with no client, once its disconnects reach ``max_use``. The change is
live when the last of its stale processes is gone (and, for a routing change, the 30 s
client cache has run out); the interval is ``{earliest, p50, p90, latest}`` over the runs.

``earliest`` is a hard lower bound (no traffic could make it sooner; a log stamp leaves a
second open), ``latest`` the bound when every new client came just before the idle timer
fired and sessions were short (null when traffic can hold a process for ever: a
multi-server, a process without a use limit, a pending action). With too little traffic
history the rate is a guess: the interval widens and ``why`` says so.

Pure and deterministic (the pseudo-random runs are seeded by the change and the time):
no I/O, no clock. Inputs: the state, a change, its prediction rows. Outputs: a dict.
Errors: none.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from typing import Any

from pfwatch.core import processes as pm
from pfwatch.core import routing_cache
from pfwatch.core.state import Change, EngineState, Process
from pfwatch.knowledge.caches import reply_reuse_seconds
from pfwatch.knowledge.daemons import spec_for

WINDOW_LONG = 120.0
WINDOW_SHORT = 15.0
MIN_HISTORY = 10.0
"""Seconds of log below which the traffic rate is not known (the interval widens)."""
PRIOR_SECONDS = 2.0
"""Weight of the prior in the rate estimate: ``Gamma(n + 0.5, seconds + PRIOR_SECONDS)``."""
RUNS = 240
SPREAD = 0.6
SPREAD_SHORT = 0.8
"""Log-normal spread of the rate per run, plus this much more with no history."""


@dataclass(frozen=True)
class Persistence:
    """How long the current traffic goes on, per run: it stops at once with probability
    ``stop``, else after a Gamma(``shape``) time with mean ``mean`` seconds (a process held
    by traffic is freed when it pauses)."""

    stop: float
    shape: float
    mean: float

    def draw(self, rng: random.Random) -> float:
        """Seconds the traffic goes on in one run."""
        if rng.random() < self.stop:
            return 0.0
        return rng.gammavariate(self.shape, self.mean / self.shape)


TRAFFIC_PERSISTENCE = Persistence(stop=0.44, shape=2.0, mean=40.0)
"""Fitted on 110 recorded real-Postfix trials with a decisive daemon (seeds 1000-1119, the
other 10 were hash edits) by ``bench/calibration.py --fit DIR`` after
``bench/calibration.py --seed 1000 --trials 60 --jobs 1 --out DIR`` and ``--seed 1060``:
a grid of stop shares (0-0.6) and means (4-50 s), shape 2; the candidate with the share of
truths at or before p50 nearest 50% among those with at least 95% inside [earliest, p90]
(ties: the smaller median p50 error). On the fit set: 50% at or before p50, 98% inside.
Reported on other seeds (5000-5229): docs/events.md section 2.1.3. The trials' traffic
is synthetic (after the edit it stops at once in a third of them, else goes on for up to
45 s with bursts and gaps): on other traffic the constants are a starting point."""
HORIZON = 3600.0
"""A run still going this long after now counts as never (null p50/p90)."""
SESSION = 0.05
"""Shortest time one connection keeps a single-server process (loopback, no data)."""
ARRIVALS_KEPT = 512
PAUSE_DISCONNECTS = 3
"""Clients that drop their trivial-rewrite connection in a pause of ipc_idle: qmgr and the
smtpd and cleanup processes that hold their services' accept locks."""


def note_arrival(state: EngineState, key: str, at: float) -> None:
    """Remember an arrival for the rate of ``key`` (``instance/service``; for
    trivial-rewrite ``instance/trivial-rewrite``: one per message, however many of its
    clients ask)."""
    times = state.arrivals.setdefault(key, [])
    times.append(at)
    if len(times) > ARRIVALS_KEPT or times[0] < at - 2 * WINDOW_LONG:
        cut = at - WINDOW_LONG
        kept = [t for t in times if t >= cut][-ARRIVALS_KEPT // 2 :]
        times[:] = kept


def rate_key(proc: Process) -> str:
    """The arrivals a process competes for: its service's (trivial-rewrite: requests)."""
    return f"{proc.instance}/{proc.service}"


def _history(state: EngineState) -> float:
    began = state.log_began_at
    return 0.0 if began is None else max(0.0, state.now - began)


def _rate_draws(
    state: EngineState, key: str, rng: random.Random, persistence: Persistence
) -> tuple[list[tuple[float, float]], dict[str, Any]]:
    """Per-run (rate, until) for ``key``: the rate half from the long window and half from
    the short one; the traffic stops at ``until`` (:class:`Persistence`)."""
    times = state.arrivals.get(key, [])
    history = _history(state)
    long_w = min(WINDOW_LONG, history)
    short_w = min(WINDOW_SHORT, history)
    now = state.now
    n_long = sum(1 for t in times if t >= now - long_w)
    n_short = sum(1 for t in times if t >= now - short_w)
    # real traffic comes in bursts and pauses: beyond the Poisson noise of the estimate,
    # each run's rate varies by a log-normal factor, wider while the history is short,
    # and each run's traffic goes on for a random time (in some runs it stops now)
    spread = SPREAD + SPREAD_SHORT * max(0.0, 1.0 - history / WINDOW_LONG)
    draws = [
        (
            rng.gammavariate(n + 0.5, 1.0 / (w + PRIOR_SECONDS)) * rng.lognormvariate(0, spread),
            now + persistence.draw(rng),
        )
        for i in range(RUNS)
        for n, w in [(n_long, long_w) if i % 2 == 0 else (n_short, short_w)]
    ]
    info = {
        "arrivals": n_long,
        "window_seconds": round(long_w, 1),
        "rate_per_second": round(n_long / long_w, 3) if long_w > 0 else None,
        "short_rate_per_second": round(n_short / short_w, 3) if short_w > 0 else None,
        "known": history >= MIN_HISTORY,
    }
    return draws, info


def _single_runs(
    state: EngineState, procs: list[Process], rates: list[tuple[float, float]], rng: random.Random
) -> tuple[list[float], float, float | None]:
    """Exit time of the last of ``procs`` (same service) per run; earliest; latest."""
    now = state.now
    idle, max_use = pm.limits(state, procs[0].service, procs[0].daemon)
    idle = idle if idle is not None else math.inf
    keys = {p.key for p in procs}
    others = [
        p
        for p in state.processes.values()
        if p.service == procs[0].service
        and p.daemon == procs[0].daemon
        and p.key not in keys
        and not p.inferred
    ]
    stale = [_start(state, p, idle, max_use) for p in procs]
    fresh = [_start(state, p, idle, max_use) for p in others]
    earliest = now
    latest: float | None = now
    for low, high, left in stale:
        earliest = max(earliest, min(low, now + SESSION) if left else min(low, now))
        if latest is not None:
            latest = None if not max_use or idle == math.inf else max(latest, high + left * idle)
    runs = [
        _simulate_single(stale, fresh, idle=idle, rate=rate, until=until, now=now, rng=rng)
        for rate, until in rates
    ]
    return runs, earliest, latest


def _start(
    state: EngineState, proc: Process, idle: float, max_use: int | None
) -> tuple[float, float, int]:
    """(idle exit low, high, uses left) of a process as things stand."""
    now = state.now
    left = (max_use - proc.uses) if max_use else 10**9
    if proc.draining:
        left = 0
    deadline = None if proc.session_open else pm.idle_deadline(state, proc)
    if deadline is None:
        high = now + SESSION + idle
        low = now if proc.session_open else now + idle
    else:
        high = deadline[1]
        low = high - state.resolution()
    return max(now, low), max(now, high), max(left, 0)


def _simulate_single(
    stale: list[tuple[float, float, int]],
    fresh: list[tuple[float, float, int]],
    *,
    idle: float,
    rate: float,
    until: float,
    now: float,
    rng: random.Random,
) -> float:
    """One run. Idle processes of a service queue for its accept lock in the order they
    went idle (src/master/single_server.c:810-819): the next client goes to the one idle
    longest, i.e. the one whose idle deadline comes first."""
    n = len(stale)
    starts = [*stale, *fresh]
    deadline = [rng.uniform(lo, hi) if hi > lo else hi for lo, hi, _ in starts]
    left = [uses for *_, uses in starts]
    gone: list[float | None] = [None] * len(starts)
    for i, uses in enumerate(left):
        if uses <= 0:  # draining or used up: it ends with its current session
            gone[i] = min(deadline[i], now + SESSION)
    t = now
    while any(g is None for g in gone[:n]):
        nxt = t + rng.expovariate(rate) if rate > 0 else math.inf
        if nxt > until:
            nxt = math.inf
        for i, g in enumerate(gone):
            if g is None and deadline[i] <= nxt:
                gone[i] = deadline[i]
        if all(g is not None for g in gone[:n]):
            break
        if nxt - now > HORIZON:
            return math.inf
        t = nxt
        pool = [i for i, g in enumerate(gone) if g is None]
        if not pool:  # the master starts a new process for the client
            deadline.append(t + SESSION + idle)
            left.append(10**9)
            gone.append(None)
            continue
        i = min(pool, key=lambda k: deadline[k])
        left[i] -= 1
        if left[i] <= 0:
            gone[i] = t + SESSION
        else:
            deadline[i] = t + SESSION + idle
    return max(g for g in gone[:n] if g is not None)


def _client_hold(state: EngineState, instance: str) -> tuple[float, float]:
    """(How long after a message its clients hold trivial-rewrite, disconnects each
    message causes on average). Idle smtpd/cleanup processes beyond the first wait for
    the accept lock and hold their connection until the holder exits (max_idle; see
    :func:`pfwatch.core.processes.lock_wait`); each process exit is a disconnect."""
    ipc_idle, _ = pm.ipc_limits(state)
    hold, per_message = ipc_idle, 0.0
    for daemon in ("smtpd", "cleanup"):
        mine = [
            p
            for p in state.processes.values()
            if p.daemon == daemon and p.instance == instance and not p.inferred
        ]
        if not mine:
            continue
        idle, max_use = pm.limits(state, mine[0].service, daemon)
        if len(mine) > 1 and idle is not None:
            hold = max(hold, idle)
        if max_use:
            per_message += 1.0 / max_use
    return hold, per_message


def _multi_runs(
    state: EngineState, procs: list[Process], rates: list[tuple[float, float]], rng: random.Random
) -> tuple[list[float], float]:
    """trivial-rewrite: exit per run and the earliest possible exit. It exits max_idle
    after its clients all let go, or at that moment once its disconnects reach max_use
    (src/master/multi_server.c:335-336,919)."""
    res = state.resolution()
    now = state.now
    idle, max_use = pm.limits(state, procs[0].service, procs[0].daemon)
    idle = idle if idle is not None else math.inf
    ipc_idle, _ = pm.ipc_limits(state)
    instance = procs[0].instance
    tracker = state.trackers.get(instance)
    held = tracker is not None and bool(tracker.clients)
    count0 = tracker.disconnects if tracker is not None else 0
    if tracker is not None and tracker.clients:
        let_go = max(pm.client_let_go(state, k, v[1]) for k, v in tracker.clients.items())
        count0 += len(tracker.clients)
    elif tracker is not None and tracker.zero_since is not None:
        let_go = tracker.zero_since
    else:
        let_go = max(p.last_activity_at for p in procs) + ipc_idle
    last_message = tracker.last_use if tracker is not None and tracker.last_use else now
    hold, per_message = _client_hold(state, instance)
    earliest = let_go + idle
    if max_use:  # enough disconnects may come sooner than expected: at the next pause
        earliest = min(earliest, let_go if held else now + hold)
    runs = []
    for rate, until in rates:
        zero = let_go + rng.uniform(0.0, res)
        count = float(count0)
        t, last, exit_at = now, last_message, math.inf
        while t - now <= HORIZON:
            nxt = t + rng.expovariate(rate) if rate > 0 else math.inf
            if nxt > until:
                nxt = math.inf
            if nxt >= zero:
                if max_use and count >= max_use and (held or t > now):
                    exit_at = zero
                    break
                if nxt >= zero + idle:
                    exit_at = zero + idle
                    break
            if nxt - last >= ipc_idle:
                count += PAUSE_DISCONNECTS  # qmgr and the lock holders let go in a pause
            count += per_message
            t = last = nxt
            zero = nxt + hold
        runs.append(max(now, exit_at))
    return runs, max(now, earliest)


def _fixed_runs(low: float, high: float | None, rng: random.Random) -> list[float]:
    if high is None:
        return [math.inf] * RUNS
    return [rng.uniform(low, high) if high > low else high for _ in range(RUNS)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _quantile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    value = ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
    return None if math.isinf(value) else round(value, 3)


def live_interval(
    state: EngineState,
    change: Change,
    rows: list[dict[str, Any]],
    blocked: bool,
    *,
    persistence: Persistence = TRAFFIC_PERSISTENCE,
) -> dict[str, Any]:
    """``{earliest, p50, p90, latest, why, traffic, daemons}`` for a pending change
    (``persistence``: another traffic model, for fitting it)."""
    if blocked:
        return {
            "earliest": None,
            "p50": None,
            "p90": None,
            "latest": None,
            "why": "it needs an action (postmap, reload, stop/start) before it can go live",
            "traffic": {},
            "daemons": {},
        }
    rng = random.Random(zlib.crc32(change.change_id.encode()))  # noqa: S311 - reproducible
    now = max(change.at, state.now)
    samples: dict[str, list[float]] = {}
    bounds: dict[str, tuple[float, float | None]] = {}
    traffic: dict[str, Any] = {}
    unknown: list[str] = []
    groups: dict[tuple[str, str], list[Process]] = {}
    for row in rows:
        proc = state.processes.get(row["process"]) if row["process"] else None
        daemon = row["daemon"]
        if proc is None or (proc.inferred and daemon != routing_cache.REWRITER):
            low = float(row["earliest"]) if row["earliest"] is not None else now
            top = None if row["latest"] is None else float(row["latest"])
            _merge(samples, bounds, daemon, _fixed_runs(low, top, rng), low=low, high=top)
            continue
        groups.setdefault((proc.service, proc.daemon), []).append(proc)
    for (service, daemon), procs in sorted(groups.items()):
        spec = spec_for(daemon)
        key = rate_key(procs[0])
        if spec.name == routing_cache.REWRITER:
            key = f"{procs[0].instance}/{routing_cache.REWRITER}"
        rates, info = _rate_draws(state, key, rng, persistence)
        traffic[service] = info
        if not info["known"]:
            unknown.append(service)
        high: float | None
        if spec.skeleton == "single" and spec.name != "pickup":
            runs, low, high = _single_runs(state, procs, rates, rng)
        elif spec.name == routing_cache.REWRITER:
            runs, low = _multi_runs(state, procs, rates, rng)
            high = None
        else:
            mine = [r for r in rows if r["process"] in {p.key for p in procs}]
            low = max(float(r["earliest"] or now) for r in mine)
            highs = [r["latest"] for r in mine]
            high = None if any(h is None for h in highs) else max(float(h) for h in highs)
            runs = _fixed_runs(low, high, rng)
        caps = [change.stale_until.get(p.key) for p in procs]
        if all(c is not None for c in caps):
            cap = max(float(c) for c in caps if c is not None)
            runs = [min(r, cap) for r in runs]
            high = cap if high is None else min(high, cap)
            low = min(low, cap)
        _merge(samples, bounds, daemon, runs, low=low, high=high)
    total = [now] * RUNS
    earliest, latest = now, now
    unbounded = False
    for daemon, runs in samples.items():
        total = [max(a, b) for a, b in zip(total, runs, strict=True)]
        low, high = bounds[daemon]
        earliest = max(earliest, low)
        if high is None:
            unbounded = True
        else:
            latest = max(latest, high)
    if routing_cache.routing_affected(change):
        window = change.routing_cache
        if window:
            end = window.latest
            total = [max(t, end) for t in total]
            earliest, latest = max(earliest, end), max(latest, end)
        elif routing_cache.REWRITER in samples:
            reuse = reply_reuse_seconds()
            old = samples[routing_cache.REWRITER]
            total = [max(t, g + reuse) for t, g in zip(total, old, strict=True)]
            low, high = bounds[routing_cache.REWRITER]
            earliest = max(earliest, low + reuse)
            latest = latest if high is None else max(latest, high + reuse)
    daemons = {
        name: {
            "earliest": round(bounds[name][0], 3),
            "p50": _quantile(runs, 0.5),
            "p90": _quantile(runs, 0.9),
            "latest": _round(bounds[name][1]),
        }
        for name, runs in sorted(samples.items())
    }
    return {
        "earliest": round(earliest, 3),
        "p50": _quantile(total, 0.5),
        "p90": _quantile(total, 0.9),
        "latest": None if unbounded else round(latest, 3),
        "why": _why(traffic, unknown, unbounded, persistence),
        "traffic": traffic,
        "daemons": daemons,
    }


def _merge(
    samples: dict[str, list[float]],
    bounds: dict[str, tuple[float, float | None]],
    daemon: str,
    runs: list[float],
    *,
    low: float,
    high: float | None,
) -> None:
    """Fold one group's runs into its daemon's: the last of them decides."""
    if daemon not in samples:
        samples[daemon], bounds[daemon] = list(runs), (low, high)
        return
    samples[daemon] = [max(a, b) for a, b in zip(samples[daemon], runs, strict=True)]
    old_low, old_high = bounds[daemon]
    bounds[daemon] = (
        max(old_low, low),
        None if old_high is None or high is None else max(old_high, high),
    )


def _why(
    traffic: dict[str, Any], unknown: list[str], unbounded: bool, persistence: Persistence
) -> str:
    parts = []
    if unknown:
        parts.append(
            f"too little traffic history for {', '.join(sorted(unknown))} (under "
            f"{MIN_HISTORY:g} s of log): the rate is a guess and the interval is wide"
        )
    rates = [
        f"{name} {info['rate_per_second']:g}/s"
        for name, info in sorted(traffic.items())
        if info.get("rate_per_second") is not None
    ]
    if rates:
        parts.append(
            "simulated with the recent arrival rates ("
            + ", ".join(rates)
            + f"), varied per run; the traffic stops at once in {persistence.stop:.0%} of "
            f"runs, else after {persistence.mean:g} s on average"
        )
    if unbounded:
        parts.append("traffic can hold a process for ever: no latest bound")
    return "; ".join(parts)
