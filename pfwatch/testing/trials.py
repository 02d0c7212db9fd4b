"""Randomized real-Postfix trials: random limits, traffic and edits, judged by /proc.

One trial starts a private Postfix (:class:`~pfwatch.instance.local.PostfixInstance`)
with a random ``max_idle``, ``max_use`` and ``default_process_limit``, drives Poisson SMTP
traffic on loopback from several concurrent clients (steady phases, bursts and idle
gaps), makes one random configuration edit in the middle of the traffic (an smtpd-read
parameter, a trivial-rewrite-read parameter or file list, a cleanup-read ``header_checks``
pcre table, or a hash table rebuilt with ``postmap``), and records two things: the input
stream a pfwatch engine would see (classified maillog lines, /proc polls, the
configuration events, ticks), and the truth, the process table polled every 20 ms. After
the last process running the old configuration is gone, a probe message puts fresh
evidence into the log.

Scoring replays the recorded stream through two fresh engines (log only; log and /proc)
and compares what they said at edit time (bounds, ``live_interval``) and what they
confirmed later with the truth, per daemon. Recording and scoring are separate so that a
stored trial can be scored again by a newer engine (``bench/calibration.py --replay``).

Inputs: a seed (everything random derives from it: rerun a trial with the same seed).
Outputs: :class:`Trace` (picklable) and :func:`score` rows (plain JSON data).
Errors: :class:`~pfwatch.instance.local.PostfixUnavailable` when Postfix cannot run
here; ``smtplib``/``OSError`` failures of single messages are counted, not raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import pickle
import random
import smtplib
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfwatch.changewindow.whatif import changed_event
from pfwatch.config.facts import facts_from_snapshot
from pfwatch.config.snapshot import build_snapshot
from pfwatch.core import predict
from pfwatch.core.fold import step
from pfwatch.core.state import Change, EngineState, Settings
from pfwatch.events import (
    ConfigSnapshotTaken,
    Event,
    Finding,
    LogEvent,
    ProcessInfo,
    ProcessTableSeen,
    Tick,
)
from pfwatch.instance.local import PostfixInstance
from pfwatch.knowledge.daemons import TIMINGS
from pfwatch.maillog.reader import LogClassifier

TRUTH_POLL = 0.02
"""Seconds between /proc polls of the truth."""
PUMP = 0.1
"""Seconds between reads of the maillog (and /proc polls for the log+/proc engine)."""
MARGIN = 2.0
PROBE_DELAY = 1.2
"""Seconds between the truth (the last stale process gone) and the probe message. More
than the log's 1 s stamp resolution: a contact stamped within the second in which the old
process may have exited cannot be told apart, from the log, from one just before it."""
RATES = {"low": 0.25, "mid": 0.7, "high": 1.6, "peak": 3.0}
"""Mean arrivals per second of each traffic level."""
EDITS = ("smtpd_param", "rewrite_param", "rewrite_list", "pcre", "hash")
EDIT_DAEMONS = {
    "smtpd_param": ("smtpd",),
    "rewrite_param": ("trivial-rewrite",),
    "rewrite_list": ("trivial-rewrite",),
    "pcre": ("cleanup",),
    "hash": (),
}
"""The daemons whose exits decide each edit (the truth compares their last stale exit)."""


@dataclass(frozen=True)
class Phase:
    """Traffic from ``start`` to ``end`` seconds after the traffic began, at ``rate``/s."""

    kind: str
    start: float
    end: float
    rate: float


@dataclass(frozen=True)
class TrialPlan:
    """Everything random about one trial, drawn from its seed."""

    seed: int
    max_idle: int
    max_use: int | None
    process_limit: int | None
    level: str
    rate: float
    clients: int
    edit: str
    edit_after: float
    phases: tuple[Phase, ...]
    arrivals: tuple[float, ...]

    @property
    def traffic_end(self) -> float:
        return self.phases[-1].end if self.phases else 0.0


def _phases(
    rng: random.Random, rate: float, total: float, max_idle: int, *, lead: float = 0.0
) -> list[Phase]:
    """Steady phases with bursts and idle gaps; the first ``lead`` seconds are steady."""
    phases: list[Phase] = [Phase("steady", 0.0, min(lead, total), rate)] if lead else []
    at = min(lead, total)
    while at < total:
        roll = rng.random()
        if roll < 0.15:
            kind, length, r = "burst", rng.uniform(1.0, 3.0), rate * rng.uniform(3.0, 6.0)
        elif roll < 0.3:
            kind, length, r = "gap", rng.uniform(0.5, 2.5) * max_idle, 0.0
        else:
            kind, length, r = "steady", rng.uniform(4.0, 15.0), rate
        end = min(total, at + length)
        phases.append(Phase(kind, round(at, 3), round(end, 3), r))
        at = end
    return phases


def _arrivals(rng: random.Random, phases: list[Phase]) -> list[float]:
    """Poisson arrivals, phase by phase (a homogeneous process within each phase)."""
    times: list[float] = []
    for phase in phases:
        if phase.rate <= 0:
            continue
        t = phase.start + rng.expovariate(phase.rate)
        while t < phase.end:
            times.append(round(t, 3))
            t += rng.expovariate(phase.rate)
    return times


def plan_trial(seed: int) -> TrialPlan:
    """Draw a trial from ``seed`` (the same seed gives the same plan)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible trials, not secrets
    max_idle = rng.randint(3, 8)
    max_use = rng.choice([None, rng.randint(5, 30), rng.randint(5, 30)])
    limit = rng.choice([None, None, 2, 3, 5])
    level = rng.choice(list(RATES))
    rate = RATES[level] * rng.uniform(0.7, 1.3)
    edit = rng.choices(EDITS, weights=(3, 2, 1, 2, 1))[0]
    edit_after = rng.uniform(8.0, 16.0)
    # traffic goes on after the edit for a while, then stops: the stale processes go
    post = rng.choice([0.0, rng.uniform(2.0, 20.0), rng.uniform(10.0, 45.0)])
    phases = _phases(rng, rate, edit_after, max_idle, lead=rng.uniform(5.0, edit_after))
    phases += [
        Phase(p.kind, p.start + edit_after, p.end + edit_after, p.rate)
        for p in _phases(rng, rate, post, max_idle)
    ]
    arrivals = _arrivals(rng, phases)
    return TrialPlan(
        seed=seed,
        max_idle=max_idle,
        max_use=max_use,
        process_limit=limit,
        level=level,
        rate=round(rate, 3),
        clients=rng.randint(1, 4),
        edit=edit,
        edit_after=round(edit_after, 3),
        phases=tuple(phases),
        arrivals=tuple(arrivals),
    )


@dataclass
class TruthRow:
    """One process of the instance as the 20 ms poller saw it."""

    name: str
    first_seen: float
    gone_at: float | None = None
    last_alive: float | None = None


class TruthPoller(threading.Thread):
    """Polls the instance's processes every :data:`TRUTH_POLL` seconds."""

    def __init__(self, pf: PostfixInstance) -> None:
        super().__init__(daemon=True)
        self.pf = pf
        self.lock = threading.Lock()
        self.rows: dict[int, TruthRow] = {}
        self.stopping = threading.Event()
        self.poll()

    def poll(self) -> None:
        procs = self.pf.processes(include_master=True)
        now = time.time()
        alive = {p.pid for p in procs}
        with self.lock:
            for p in procs:
                self.rows.setdefault(p.pid, TruthRow(p.name, now)).last_alive = now
            for pid, row in self.rows.items():
                if row.gone_at is None and pid not in alive:
                    row.gone_at = now

    def run(self) -> None:
        while not self.stopping.wait(TRUTH_POLL):
            with contextlib.suppress(Exception):
                self.poll()

    def alive(self) -> dict[int, TruthRow]:
        self.poll()
        with self.lock:
            return {
                pid: TruthRow(r.name, r.first_seen)
                for pid, r in self.rows.items()
                if r.gone_at is None
            }


@dataclass
class Trace:
    """What one trial recorded: the plan, the engine input stream and the truth."""

    plan: TrialPlan
    events: list[tuple[str, Event]] = field(default_factory=list)
    """(``"all"`` or ``"proc"``: which engines get it, the event)."""
    reference_time: float = 0.0
    started_at: float = 0.0
    changed_at: float = 0.0
    change_id: str = ""
    stale_truth: dict[int, str] = field(default_factory=dict)
    truth: dict[int, TruthRow] = field(default_factory=dict)
    probe_at: float | None = None
    sent: int = 0
    failed: int = 0
    timed_out: bool = False
    maillog: str = ""
    whole_log: bool = False
    """The recorded stream starts at the first log line (earlier traces started later)."""

    def save(self, path: Path) -> None:
        path.write_bytes(pickle.dumps(self))

    @staticmethod
    def load(path: Path) -> Trace:
        loaded = pickle.loads(path.read_bytes())  # noqa: S301 - our own trial files
        if not isinstance(loaded, Trace):
            raise TypeError(f"{path}: not a trial trace")
        _upgrade(loaded, set())
        return loaded


def _upgrade(obj: object, seen: set[int]) -> None:
    """Give the records of an older trace the fields added since, at their defaults (a
    stored trace is scored again by a newer engine; a field with no default fails)."""
    if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None))):
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        for value in obj.values():
            _upgrade(value, seen)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for value in obj:
            _upgrade(value, seen)
        return
    if not dataclasses.is_dataclass(obj):
        return
    for spec in dataclasses.fields(obj):
        try:
            value = getattr(obj, spec.name)
        except AttributeError:
            if spec.default is not dataclasses.MISSING:
                value = spec.default
            elif spec.default_factory is not dataclasses.MISSING:
                value = spec.default_factory()
            else:
                raise
            object.__setattr__(obj, spec.name, value)
        _upgrade(value, seen)


class _Sender(threading.Thread):
    """One SMTP client: sends a message at each of its arrival times (late: at once)."""

    def __init__(self, pf: PostfixInstance, t0: float, times: list[float], name: str) -> None:
        super().__init__(daemon=True)
        self.pf, self.t0, self.times, self.tag = pf, t0, times, name
        self.sent = self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        for i, offset in enumerate(self.times):
            delay = self.t0 + offset - time.time()
            if delay > 0 and self.stopping.wait(delay):
                return
            try:
                self.pf.send_mail(f"{self.tag}@example.com", f"r{i}.{self.tag}@example.net")
                self.sent += 1
            except (smtplib.SMTPException, OSError):
                self.failed += 1


class _Recorder:
    """Reads the maillog and /proc into a :class:`Trace`; keeps a log-only engine live."""

    def __init__(self, pf: PostfixInstance, trace: Trace) -> None:
        self.pf, self.trace = pf, trace
        self.classifier = LogClassifier(reference_time=trace.reference_time)
        self.offset = 0  # the whole log: the start-up probe session used up an smtpd use
        self.partial = b""
        self.engine = EngineState(settings=Settings(margin=MARGIN, max_idle=float(pf.max_idle)))
        self.lock = threading.Lock()

    def record(self, target: str, event: Event) -> list[Finding]:
        self.trace.events.append((target, event))
        return step(self.engine, event) if target == "all" else []

    def pump(self) -> None:
        with self.lock:
            procs = self.pf.processes(include_master=True)
            with self.pf.maillog.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
            self.offset += len(data)
            *lines, self.partial = (self.partial + data).split(b"\n")
            for line in lines:
                event = self.classifier.feed(line)
                if event is not None:
                    self.record("all", event)
            now = time.time()
            infos = tuple(
                ProcessInfo(
                    pid=p.pid,
                    daemon=p.name,
                    service=p.service,
                    instance="postfix",
                    started_at=p.started_at,
                )
                for p in procs
            )
            self.record("proc", ProcessTableSeen(at=now, processes=infos))
            self.record("all", Tick(at=now))


def _setup(pf: PostfixInstance, edit: str, seed: int) -> None:
    """Tables the edit needs, in place before the trial's traffic starts."""
    if edit == "pcre":
        pf.write_file("header_checks.pcre", "/^X-Nothing:/ IGNORE\n")
        pf.edit_main_cf({"header_checks": "pcre:$config_directory/header_checks.pcre"})
    elif edit == "hash":
        pf.write_file("access", "10.9.9.9 REJECT\n")
        pf.postmap("access")
        pf.edit_main_cf(
            {"smtpd_client_restrictions": "check_client_access hash:$config_directory/access"}
        )
    elif edit == "rewrite_list":
        pf.write_file("vdomains", f"before{seed}.example\n")
        pf.edit_main_cf({"virtual_alias_domains": "$config_directory/vdomains"})
    else:
        return
    pf.reload(wait=True)


def _edit(pf: PostfixInstance, edit: str, seed: int) -> float:
    """Make the trial's edit; returns its time."""
    if edit == "smtpd_param":
        return pf.edit_main_cf({"smtpd_banner": f"$myhostname ESMTP trial {seed}"})
    if edit == "rewrite_param":
        return pf.edit_main_cf({"virtual_alias_domains": f"trial{seed}.example"})
    if edit == "rewrite_list":
        pf.write_file("vdomains", f"after{seed}.example\n")
        return time.time()
    if edit == "pcre":
        pf.write_file("header_checks.pcre", f"/^X-Trial-{seed}:/ IGNORE\n")
        return time.time()
    # Postfix compares a table's mtime in whole seconds (src/util/dict.c:583-609)
    built = int((pf.config_dir / "access.db").stat().st_mtime)
    time.sleep(max(0.0, built + 1.05 - time.time()))
    pf.write_file("access", f"10.9.8.{seed % 250} REJECT\n")
    return pf.postmap("access")


def run_trial(seed: int, *, base_dir: str | None = None, timeout: float = 120.0) -> Trace:
    """Run one randomized trial against a fresh private Postfix; return its trace."""
    plan = plan_trial(seed)
    extra = {"default_process_limit": str(plan.process_limit)} if plan.process_limit else {}
    with PostfixInstance(
        base_dir=base_dir,
        max_idle=plan.max_idle,
        max_use=plan.max_use,
        verbose=(),
        main_cf=extra,
    ) as pf:
        _setup(pf, plan.edit, seed)
        time.sleep(0.3)
        return _drive(pf, plan, timeout)


def _drive(pf: PostfixInstance, plan: TrialPlan, timeout: float) -> Trace:
    trace = Trace(
        plan=plan, reference_time=time.time(), change_id=f"trial-{plan.seed}", whole_log=True
    )
    poller = TruthPoller(pf)
    poller.start()
    recorder = _Recorder(pf, trace)
    try:
        snapshot = build_snapshot(str(pf.config_dir))
        recorder.record(
            "all", ConfigSnapshotTaken(at=time.time(), facts=facts_from_snapshot(snapshot))
        )
        recorder.pump()
        t0 = trace.started_at = time.time() + 0.2
        senders = [
            _Sender(pf, t0, list(plan.arrivals[i :: plan.clients]), f"c{i}")
            for i in range(plan.clients)
        ]
        for sender in senders:
            sender.start()
        while time.time() < t0 + plan.edit_after:
            recorder.pump()
            time.sleep(PUMP)
        recorder.pump()
        stale = poller.alive()
        changed_at = _edit(pf, plan.edit, plan.seed)
        trace.changed_at = changed_at
        recorder.pump()
        new = build_snapshot(str(pf.config_dir), snapshot)
        recorder.record("all", changed_event(snapshot, new, changed_at, trace.change_id))
        daemons = set(EDIT_DAEMONS[plan.edit])
        trace.stale_truth = {pid: r.name for pid, r in stale.items() if r.name in daemons}
        deadline = changed_at + timeout
        done_at: float | None = None
        while time.time() < deadline:
            recorder.pump()
            if done_at is None and _truth_done(poller, trace) and _traffic_done(senders):
                done_at = time.time()
            if (
                trace.probe_at is None
                and done_at is not None
                and time.time() >= done_at + PROBE_DELAY
            ):
                trace.probe_at = time.time()
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    pf.send_mail("probe@example.com", "probe@example.net")
            if trace.probe_at is not None and _engine_done(recorder.engine, trace):
                break
            time.sleep(PUMP)
        else:
            trace.timed_out = True
        for sender in senders:
            sender.stopping.set()
            sender.join(timeout=10)
        time.sleep(PUMP)
        recorder.pump()
        trace.sent = sum(s.sent for s in senders)
        trace.failed = sum(s.failed for s in senders)
    finally:
        poller.stopping.set()
        poller.join(timeout=2)
    with poller.lock:
        trace.truth = {
            pid: TruthRow(r.name, r.first_seen, r.gone_at, r.last_alive)
            for pid, r in poller.rows.items()
        }
    trace.maillog = pf.log_text()
    return trace


def _truth_done(poller: TruthPoller, trace: Trace) -> bool:
    with poller.lock:
        return all(poller.rows[pid].gone_at is not None for pid in trace.stale_truth)


def _traffic_done(senders: list[_Sender]) -> bool:
    return not any(s.is_alive() for s in senders)


def _engine_done(state: EngineState, trace: Trace) -> bool:
    """The log-only engine has settled every stale process (or declared the change live)."""
    change = state.changes.get(trace.change_id)
    if change is None:
        return True
    if change.status in {"live", "needs_action"}:
        return True
    if trace.probe_at is None or time.time() < trace.probe_at + MARGIN + 1.5:
        return False
    if time.time() > trace.probe_at + 30.0:
        return True
    daemons = set(EDIT_DAEMONS[trace.plan.edit])
    keys = [k for k in change.stale if k.split("/")[1] in daemons]
    return all(k in change.resolved for k in keys)


# ----------------------------------------------------------------------- scoring
def _engine_rows(trace: Trace, with_proc: bool) -> dict[str, Any]:
    """Replay the trace into one engine: what it said at the edit and what it confirmed."""
    state = EngineState(settings=Settings(margin=MARGIN, max_idle=float(trace.plan.max_idle)))
    detected: dict[str, Any] = {}
    at_edit: dict[str, dict[str, Any]] = {}
    live: dict[str, Any] = {}
    last = trace.events[-1][1].at if trace.events else trace.changed_at
    events = [*_missed_start(trace), *trace.events]
    # the trial stopped reading once it had settled; the log had ended: let the margin pass,
    # and the longest silence a process can still be held by (its clients' ipc_idle, then
    # max_idle), as a sidecar would go on ticking
    hold = TIMINGS["ipc_idle_default"][0] + trace.plan.max_idle
    ending: list[tuple[str, Event]] = [("all", Tick(at=last + MARGIN + 1.5 + hold))]
    for target, event in [*events, *ending]:
        if target == "proc" and not with_proc:
            continue
        for finding in step(state, event):
            if finding.name == "change_detected":
                detected = dict(finding.data)
                opened = state.changes[trace.change_id]
                pred = predict.change_prediction(state, opened)
                at_edit = _per_daemon(pred["stale"], opened.at)
            elif finding.name == "change_live":
                live = dict(finding.data)
    change = state.changes.get(trace.change_id)
    confirmed: dict[str, float | None] = {}
    if change is not None:
        for daemon in EDIT_DAEMONS[trace.plan.edit]:
            keys = [k for k in change.stale if k.split("/")[1] == daemon]
            times = [change.resolved[k].at for k in keys if k in change.resolved]
            unresolved = len(times) < len(keys)
            confirmed[daemon] = None if unresolved else max([change.at, *times])
    return {
        "detected": detected,
        "at_edit": at_edit,
        "confirmed": confirmed,
        "live": live,
        "status": change.status if change is not None else "missing",
    }


@dataclass
class EditSnapshot:
    """An engine as it stood when it reported the trial's edit (``change_detected``): what
    :func:`pfwatch.core.interval.live_interval` needs to compute the interval again, with
    another traffic model (``bench/calibration.py --fit``)."""

    state: EngineState
    change: Change
    rows: list[dict[str, Any]]
    blocked: bool
    detected: dict[str, Any]
    """The ``live_interval`` the engine reported."""


def edit_snapshot(trace: Trace, with_proc: bool) -> EditSnapshot | None:
    """Replay the trace into a fresh engine up to its ``change_detected`` (None if none)."""
    state = EngineState(settings=Settings(margin=MARGIN, max_idle=float(trace.plan.max_idle)))
    for target, event in [*_missed_start(trace), *trace.events]:
        if target == "proc" and not with_proc:
            continue
        for finding in step(state, event):
            if finding.name == "change_detected" and trace.change_id in state.changes:
                change = state.changes[trace.change_id]
                pred = predict.change_prediction(state, change)
                return EditSnapshot(
                    state,
                    change,
                    pred["stale"],
                    bool(pred["blocked_by"]),
                    dict(finding.data.get("live_interval") or {}),
                )
    return None


def _missed_start(trace: Trace) -> list[tuple[str, Event]]:
    """Lines an older trace did not record (before the trial began reading): the start-up
    probe session, the set-up reload. Recovered from the kept maillog."""
    if trace.whole_log:
        return []
    first = next((e for _, e in trace.events if isinstance(e, LogEvent)), None)
    if first is None:
        return []
    classifier = LogClassifier(reference_time=trace.reference_time)
    missed: list[tuple[str, Event]] = []
    for line in trace.maillog.splitlines():
        event = classifier.feed(line)
        if event is None:
            continue
        if (event.at, event.kind, event.pid, event.daemon) == (
            first.at,
            first.kind,
            first.pid,
            first.daemon,
        ):
            return missed
        missed.append(("all", event))
    return []


def _per_daemon(rows: list[dict[str, Any]], at: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for daemon in {r["daemon"] for r in rows}:
        mine = [r for r in rows if r["daemon"] == daemon]
        entry: dict[str, Any] = {"stale": len(mine)}
        for name in ("earliest", "latest", "expected"):
            values = [r[name] for r in mine]
            entry[name] = (
                None if any(v is None for v in values) else max([at, *(float(v) for v in values)])
            )
        out[daemon] = entry
    return out


def score(trace: Trace) -> dict[str, Any]:
    """Per-trial measurements: truth and both engines' statements, relative to the edit."""
    plan = trace.plan
    at = trace.changed_at
    _refine_truth(trace)
    truth: dict[str, float | None] = {}
    truth_log: dict[str, float | None] = {}
    last_alive: dict[str, float] = {}
    for daemon in EDIT_DAEMONS[plan.edit]:
        gone = [trace.truth[p].gone_at for p, name in trace.stale_truth.items() if name == daemon]
        truth[daemon] = (
            None if any(g is None for g in gone) else max([at, *(g or at for g in gone)])
        )
        # a process born in the second of the edit may log a first line stamped before it:
        # from the log alone it may be stale too (the upper reference for the log engine)
        second = math.floor(at) + 1.0
        maybe = [
            r.gone_at
            for r in trace.truth.values()
            if r.name == daemon and at <= r.first_seen < second
        ]
        known = [g for g in [truth[daemon], *maybe] if g is not None]
        truth_log[daemon] = None if truth[daemon] is None else max(known)
        alive = [
            trace.truth[p].last_alive or at for p, n in trace.stale_truth.items() if n == daemon
        ]
        last_alive[daemon] = max([at, *alive])
    result: dict[str, Any] = {
        "seed": plan.seed,
        "edit": plan.edit,
        "level": plan.level,
        "rate": plan.rate,
        "max_idle": plan.max_idle,
        "max_use": plan.max_use,
        "process_limit": plan.process_limit,
        "clients": plan.clients,
        "sent": trace.sent,
        "failed": trace.failed,
        "timed_out": trace.timed_out,
        "stale_truth": sorted(f"{n}[{p}]" for p, n in trace.stale_truth.items()),
        "truth": {d: _rel(t, at) for d, t in truth.items()},
        "truth_log": {d: _rel(t, at) for d, t in truth_log.items()},
        "last_alive": {d: _rel(t, at) for d, t in last_alive.items()},
        "engines": {},
    }
    for name, with_proc in (("log", False), ("log+proc", True)):
        rows = _engine_rows(trace, with_proc)
        engine: dict[str, Any] = {"status": rows["status"], "daemons": {}}
        interval = rows["detected"].get("live_interval")
        engine["live_interval"] = (
            {k: _rel(interval.get(k), at) for k in ("earliest", "p50", "p90", "latest")}
            if isinstance(interval, dict)
            else None
        )
        for daemon in EDIT_DAEMONS[plan.edit]:
            said = rows["at_edit"].get(daemon, {})
            engine["daemons"][daemon] = {
                "stale": said.get("stale", 0),
                "earliest": _rel(said.get("earliest"), at),
                "predicted": _rel(said.get("latest"), at),
                "expected": _rel(said.get("expected"), at),
                "confirmed": _rel(rows["confirmed"].get(daemon), at),
                "interval": _rel_interval(rows["detected"], daemon, at),
            }
        live = rows["live"]
        engine["live_at"] = _rel(live.get("live_at"), at) if live else None
        result["engines"][name] = engine
    return result


SLACK = 0.05
"""Half the truth poller's period, and a little more (seconds)."""
NOISE = 1.0
"""Scheduling noise allowed on a loaded 2-core machine (seconds)."""


def violations(result: dict[str, Any]) -> list[str]:
    """The rules every single trial must meet (a :func:`score` result); empty when met.

    The edit-time ``live_interval.earliest`` never comes after the truth; every decisive
    daemon's live time is confirmed, never before the last poll that saw its process
    alive; with /proc within 2 s after the truth; from the log alone within the 1 s stamp
    resolution plus :data:`NOISE`, and one idle period more (``ipc_idle`` too for
    trivial-rewrite) when a request came within the second of an exit, which the log
    cannot order. A process born in the second of the edit may count as stale (its first
    line may be stamped before the edit): the upper reference (``truth_log``) includes it.
    """
    seed = result["seed"]
    found: list[str] = []
    if result.get("timed_out"):
        found.append(f"seed {seed}: the stale processes never all exited")
    for engine, data in result["engines"].items():
        for daemon, said in data["daemons"].items():
            where = f"seed {seed} {engine} {daemon}"
            truth = result["truth"][daemon]
            if truth is None:
                found.append(f"{where}: no truth")
                continue
            interval = said["interval"]
            if said["stale"]:  # else nothing of this daemon to wait for: live at once
                if interval is None:
                    found.append(f"{where}: no live_interval")
                elif interval["earliest"] > truth + SLACK:
                    found.append(f"{where}: earliest {interval['earliest']} after truth {truth}")
            confirmed = said["confirmed"]
            if confirmed is None:
                found.append(f"{where}: never confirmed")
                continue
            alive = result["last_alive"][daemon]
            if confirmed < alive - SLACK:
                found.append(f"{where}: confirmed {confirmed} before last seen alive {alive}")
            upper = result["truth_log"][daemon]
            if engine == "log+proc":
                limit = upper + 2.0
            else:
                extra = result["max_idle"] + (5.0 if daemon == "trivial-rewrite" else 0.0)
                limit = upper + 1.0 + NOISE + extra
            if confirmed > limit:
                found.append(f"{where}: confirmed {confirmed} later than {limit:.2f}")
    return found


def _refine_truth(trace: Trace) -> None:
    """Both pollers are samples: a process is gone by the first poll of either that missed
    it (the 20 ms truth poller can lag on a loaded machine; the recorder polls too). A
    recorder poll lists the processes before it reads the log and is stamped after, so
    it counts only once one of its polls has shown the process (one born in between is
    missing from a listing stamped after its birth)."""
    polls = [e for target, e in trace.events if isinstance(e, ProcessTableSeen)]
    for pid in trace.stale_truth:
        row = trace.truth[pid]
        alive = row.last_alive if row.last_alive is not None else row.first_seen
        shown = False
        for poll in polls:
            if any(p.pid == pid for p in poll.processes):
                alive = max(alive, poll.at)
                shown = True
            elif shown and poll.at > alive and (row.gone_at is None or poll.at < row.gone_at):
                row.gone_at = poll.at
                break
        row.last_alive = alive


def _rel_interval(
    detected: dict[str, Any], daemon: str, at: float
) -> dict[str, float | None] | None:
    """The per-daemon interval from ``live_interval.daemons`` (when the engine gives one)."""
    interval = detected.get("live_interval")
    if not isinstance(interval, dict):
        return None
    row = interval.get("daemons", {}).get(daemon)
    if not isinstance(row, dict):
        return None
    return {k: _rel(row.get(k), at) for k in ("earliest", "p50", "p90", "latest")}


def _rel(value: Any, at: float) -> float | None:
    if value is None:
        return None
    return round(float(value) - at, 3)


def summary_line(result: dict[str, Any]) -> str:
    """One line per trial for logs: seed, plan and the truth."""
    truth = ", ".join(
        f"{d} +{t:.2f}s" if t is not None else f"{d} never" for d, t in result["truth"].items()
    )
    return (
        f"TRIAL seed={result['seed']} edit={result['edit']} level={result['level']} "
        f"rate={result['rate']}/s max_idle={result['max_idle']} max_use={result['max_use']} "
        f"limit={result['process_limit']} clients={result['clients']} sent={result['sent']} "
        f"truth: {truth or 'n/a'}"
    )


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
