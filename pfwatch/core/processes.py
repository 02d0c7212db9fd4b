"""The process model: births, sessions, uses and exits of every Postfix process.

Folds :class:`~pfwatch.events.LogEvent` and :class:`~pfwatch.events.ProcessTableSeen`
into :class:`~pfwatch.core.state.Process` records and turns silence into inferred exits
by the skeleton rules of :mod:`pfwatch.knowledge.daemons`; keeps the state's derived
:class:`~pfwatch.core.state.Lookups` current, so that a replay's work per line does not
grow with the number of processes. Pure: no I/O, no clock.
Inputs: the state, one event. Outputs: mutations of the state plus appended
:class:`~pfwatch.events.Finding` objects. Errors: none (odd lines are only noted).
"""

from __future__ import annotations

import math
import re

from pfwatch.core.state import ClientTracker, EngineState, Lookups, Process
from pfwatch.events import Basis, Finding, LogEvent, ServiceFacts
from pfwatch.knowledge.daemons import (
    QMGRS,
    RESOLVED_BEFORE,
    REWRITE_CLIENTS,
    SKELETONS,
    TIMINGS,
    spec_for,
)
from pfwatch.knowledge.timevalue import seconds as parse_seconds

_LIMITS_CACHE: dict[tuple[str, str, str, float, int], tuple[float | None, int | None]] = {}
_SERVICE_CACHE: dict[tuple[str, str, str], ServiceFacts | None] = {}
_IPC_CACHE: dict[tuple[str, float, float], tuple[float, float]] = {}
NEVER = 1e18
"""``next_due`` when nothing is due: far in the future, but a plain JSON number."""
QMGR_PASS = 60.0
"""Seconds within which qmgr's later lines for a queue id belong to the same active-queue
pass (deliveries, ``removed``) and are not new resolve requests."""
QUEUE_LINES_KEPT = 4096
_RCPTS = re.compile(r"\brcpt=(\d+)(?:/(\d+))?")


def service_facts(state: EngineState, service: str, daemon: str) -> ServiceFacts | None:
    """The master.cf service a process belongs to, matched by name and command."""
    if state.facts is None:
        return None
    key = (state.facts.digest, service, daemon)
    if key not in _SERVICE_CACHE:
        if len(_SERVICE_CACHE) > 10_000:
            _SERVICE_CACHE.clear()
        _SERVICE_CACHE[key] = _find_service(state, service, daemon)
    return _SERVICE_CACHE[key]


def _find_service(state: EngineState, service: str, daemon: str) -> ServiceFacts | None:
    assert state.facts is not None
    name = spec_for(daemon).name
    candidates = [s for s in state.facts.services if spec_for(s.daemon).name == name]
    if service:
        exact = [s for s in candidates if s.name == service]
        if exact:
            return exact[0]
    plain = [s for s in candidates if not s.syslog_name or s.syslog_name.endswith("postfix")]
    if len(plain) == 1:
        return plain[0]
    return candidates[0] if candidates else None


def resolve_service(state: EngineState, service: str, daemon: str) -> str:
    """The master.cf service name for a log line (the daemon name when unknown)."""
    if service:
        return service
    facts = service_facts(state, "", daemon)
    if facts is not None:
        return facts.name
    return {"smtpd": "smtp", "trivial-rewrite": "rewrite"}.get(daemon, daemon)


def limits(state: EngineState, service: str, daemon: str) -> tuple[float | None, int | None]:
    """Effective (max_idle, max_use) for a process; None when the daemon ignores it."""
    digest = state.facts.digest if state.facts is not None else ""
    key = (digest, service, daemon, state.settings.max_idle, state.settings.max_use)
    found = _LIMITS_CACHE.get(key)
    if found is None:
        if len(_LIMITS_CACHE) > 10_000:
            _LIMITS_CACHE.clear()
        found = _LIMITS_CACHE[key] = _limits(state, service, daemon)
    return found


def _limits(state: EngineState, service: str, daemon: str) -> tuple[float | None, int | None]:
    spec = spec_for(daemon)
    facts = service_facts(state, service, daemon)
    params = state.facts.parameters if state.facts is not None else {}
    idle = (
        facts.max_idle
        if facts is not None
        else parse_seconds(params.get("max_idle"), state.settings.max_idle)
    )
    use = (
        facts.max_use
        if facts is not None
        else int(parse_seconds(params.get("max_use"), float(state.settings.max_use)))
    )
    if spec.name == "anvil":
        idle = max(idle, parse_seconds(params.get("anvil_rate_time_unit"), 60.0))
    if spec.name == "verify" and params.get("address_verify_map", "x") == "":
        return None, None
    return (idle if spec.idle_applies else None), (use if spec.use_applies and use else None)


def ipc_limits(state: EngineState) -> tuple[float, float]:
    """(ipc_idle, ipc_ttl) from the configuration, else the settings' defaults."""
    settings = state.settings
    key = (
        state.facts.digest if state.facts is not None else "",
        settings.ipc_idle,
        settings.ipc_ttl,
    )
    found = _IPC_CACHE.get(key)
    if found is None:
        if len(_IPC_CACHE) > 1000:
            _IPC_CACHE.clear()
        params = state.facts.parameters if state.facts is not None else {}
        found = _IPC_CACHE[key] = (
            parse_seconds(params.get("ipc_idle"), settings.ipc_idle),
            parse_seconds(params.get("ipc_ttl"), settings.ipc_ttl),
        )
    return found


def lookups(state: EngineState) -> Lookups:
    """The state's derived indexes, built from its processes and history on first use."""
    found = state.lookups
    if not found.built:
        found.exited_keys.update(p.key for p in state.history)
        for proc in state.processes.values():
            if proc.daemon == "trivial-rewrite":
                found.rewriters.setdefault(proc.instance, {})[proc.key] = proc
        found.built = True
    return found


def registered(state: EngineState, proc: Process) -> None:
    """Record in the lookups that ``proc`` is alive again (in ``state.processes``)."""
    if proc.daemon == "trivial-rewrite":
        lookups(state).rewriters.setdefault(proc.instance, {})[proc.key] = proc


def process_key(instance: str, daemon: str, pid: int) -> str:
    return f"{instance}/{daemon}/{pid}"


def _touch_due(state: EngineState, when: float | None) -> None:
    if when is not None and (state.next_due is None or when < state.next_due):
        state.next_due = when


def started(  # noqa: PLR0917 - mirrors the fields of a process_started finding
    state: EngineState,
    instance: str,
    service: str,
    daemon: str,
    pid: int,
    at: float,
    findings: list[Finding],
    *,
    born_at: float | None = None,
    inferred: bool = False,
    basis: Basis = "observed",
    note: str = "",
) -> Process:
    """Create a process record and report ``process_started``."""
    if inferred:
        state.phantom_seq += 1
        key = f"{instance}/{daemon}/~{state.phantom_seq}"
    else:
        key = process_key(instance, daemon, pid)
    facts = state.facts
    proc = Process(
        key=key,
        instance=instance,
        service=resolve_service(state, service, daemon),
        daemon=daemon,
        pid=pid,
        first_seen_at=at,
        last_activity_at=at,
        born_at=born_at if born_at is not None else at,
        born_exact=born_at is not None,
        generation=facts.digest if facts is not None else "",
        inferred=inferred,
    )
    master = state.master.get(instance)
    if master is not None and master.version:
        proc.release = master.version
    state.processes[key] = proc
    registered(state, proc)
    findings.append(
        Finding(
            "process_started",
            at,
            basis,
            {
                "service": proc.service,
                "daemon": daemon,
                "pid": pid,
                "process": key,
                "instance": instance,
                "born_at": proc.born_at,
                "born_exact": proc.born_exact,
                "note": note or ("first log line of this pid" if not proc.born_exact else ""),
            },
        )
    )
    return proc


def claim_exit(  # noqa: PLR0917 - the fields of exited() a log line can state
    state: EngineState,
    proc: Process,
    at: float,
    reason: str,
    basis: Basis,
    note: str,
    findings: list[Finding],
    *,
    drains: bool = False,
) -> None:
    """A log line says ``proc`` exits: exit it, unless /proc is fresh and shows it.

    Anyone may write such a line, so with /proc authoritative it only announces the exit
    (``exit_claim_*``); the poll that misses the process confirms it, and one that still
    shows it a few seconds later contradicts it (:mod:`pfwatch.core.observe`).
    """
    if state.proc_authoritative() and not proc.inferred:
        if proc.exit_claim_at is None:
            proc.exit_claim_at, proc.exit_claim_reason, proc.exit_claim_note = at, reason, note
            proc.exit_claim_drains = drains
        return
    exited(state, proc, at, reason, basis, note, findings)


def exited(  # noqa: PLR0917 - mirrors the fields of a process_exited finding
    state: EngineState,
    proc: Process,
    at: float,
    reason: str,
    basis: Basis,
    note: str,
    findings: list[Finding],
    *,
    latest: float | None = None,
) -> None:
    """Mark ``proc`` exited at ``at`` and report ``process_exited``."""
    if not proc.alive:
        return
    proc.exited_at = at
    # a log line stamped S was written in [S, S + resolution): the exit may be that late
    default = at + state.resolution()
    proc.exit_latest = max(latest if latest is not None else default, at)
    proc.exit_reason = reason
    proc.exit_basis = basis
    proc.exit_note = note
    proc.session_open = False
    state.processes.pop(proc.key, None)
    state.history.append(proc)
    index = lookups(state)
    index.exited_keys.add(proc.key)
    if proc.daemon == "trivial-rewrite":
        index.rewriters.get(proc.instance, {}).pop(proc.key, None)
    if len(state.history) > state.settings.history_limit:
        del state.history[: len(state.history) - state.settings.history_limit]
    for tracker in state.trackers.values():
        held = tracker.clients.pop(proc.key, None)
        if held is not None:
            _client_gone(tracker, at)
    if proc.daemon == "smtpd" and not any(
        p.daemon == "smtpd" and p.instance == proc.instance for p in state.processes.values()
    ):
        tracker = state.trackers.setdefault(proc.instance, ClientTracker())
        gone = proc.exit_latest if proc.exit_latest is not None else at
        tracker.holders_gone_at = max(tracker.holders_gone_at or gone, gone)
        for other in state.processes.values():
            if other.daemon == "anvil" and other.instance == proc.instance:
                schedule(state, other)
    findings.append(
        Finding(
            "process_exited",
            state.now,
            basis,
            {
                "service": proc.service,
                "daemon": proc.daemon,
                "pid": proc.pid,
                "process": proc.key,
                "instance": proc.instance,
                "exited_at": at,
                "exit_latest": proc.exit_latest,
                "reason": reason,
                "basis": basis,
                "explanation": note,
                "sessions": proc.sessions,
            },
        )
    )


def _client_gone(tracker: ClientTracker, at: float) -> None:
    tracker.disconnects += 1
    tracker.last_gone = max(at, tracker.last_gone or at)
    if not tracker.clients:
        tracker.zero_since = tracker.last_gone


def idle_deadline(state: EngineState, proc: Process) -> tuple[float, float, str] | None:
    """When silence makes ``proc`` exit: (estimate, latest, rule) or None (no idle exit).

    single/dgram/trigger: ``max_idle`` after the last connection closed (or the last
    activity). multi/event: ``max_idle`` after the last client let go (trackers).
    """
    found = _deadline(state, proc)
    if found is None:
        return None
    base, idle, rule = found
    res = state.resolution()
    return base + idle + res / 2, base + idle + res, _rule_text(state, proc, rule, idle)


# Which rule of idle_deadline applies; its text is written only when a finding needs it.
_DRAINING, _TRIGGER, _ANVIL, _CLIENT_LINES, _IPC_CLIENTS, _SINGLE = range(6)


def _deadline(state: EngineState, proc: Process) -> tuple[float, float, int] | None:
    """(base, delay, rule) of :func:`idle_deadline`: the exit is due ``delay`` after
    ``base``, at the latest one timestamp resolution later."""
    idle, _ = limits(state, proc.service, proc.daemon)
    spec = spec_for(proc.daemon)
    if proc.draining and not proc.session_open:
        return proc.last_activity_at, 0.0, _DRAINING
    skeleton = spec.skeleton
    if skeleton == "trigger" and idle is not None:
        facts = service_facts(state, proc.service, proc.daemon)
        wakeup = float(facts.wakeup) if facts is not None and facts.wakeup else 60.0
        if idle >= wakeup:
            return None
        return proc.last_activity_at, idle, _TRIGGER
    if idle is None or proc.session_open or skeleton == "master":
        return None
    last = proc.last_activity_at
    if spec.name == "anvil":
        # every smtpd holds a connection for its lifetime (anvil_clnt.c:193-196)
        if any(
            p.daemon == "smtpd" and p.instance == proc.instance for p in state.processes.values()
        ):
            return None
        tracker = state.trackers.get(proc.instance)
        gone = tracker.holders_gone_at if tracker is not None else None
        return max(gone or last, last), idle, _ANVIL
    if skeleton in ("multi", "event"):
        if proc.client_lines:
            if proc.clients > 0:
                return None
            return max(proc.last_session_end_at or last, last), idle, _CLIENT_LINES
        if spec.name not in ("trivial-rewrite", "proxymap", "scache", "verify"):
            return None
        tracker = state.trackers.get(proc.instance)
        if tracker is None or tracker.clients:
            return None
        zero = tracker.zero_since if tracker.zero_since is not None else last
        return max(zero, last), idle, _IPC_CLIENTS
    base = proc.last_session_end_at if proc.last_session_end_at is not None else last
    return max(base, last), idle, _SINGLE


def _rule_text(state: EngineState, proc: Process, rule: int, idle: float) -> str:
    """The explanation of an idle deadline (see :func:`_deadline`)."""
    if rule == _DRAINING:
        return f"finishes its last request ({proc.drain_reason})"
    if rule == _TRIGGER:
        facts = service_facts(state, proc.service, proc.daemon)
        wakeup = float(facts.wakeup) if facts is not None and facts.wakeup else 60.0
        return (
            f"max_idle {idle:g} s is shorter than the master's {wakeup:g} s wakeup: it idles "
            "out after its last trigger (src/master/trigger_server.c:288-289)"
        )
    if rule == _ANVIL:
        return (
            "anvil idles only after the last smtpd (which holds a connection for its whole "
            f"life, src/global/anvil_clnt.c:193-196) is gone, then {idle:g} s "
            "(max_idle, at least anvil_rate_time_unit: src/anvil/anvil.c:998-1004)"
        )
    skeleton = SKELETONS[spec_for(proc.daemon).skeleton]
    how = f"{skeleton.idle} ({skeleton.idle_source})"
    if rule == _CLIENT_LINES:
        return (
            f"max_idle {idle:g} s after its last client disconnected (-v connection lines): {how}"
        )
    if rule == _IPC_CLIENTS:
        return (
            "its clients let go ipc_idle after their last request (clnt_stream.c:174-182); "
            f"then max_idle {idle:g} s passed with no client: {how}"
        )
    return f"max_idle {idle:g} s after its last connection: {how}"


def schedule(state: EngineState, proc: Process) -> None:
    """Register when ``proc`` next needs attention from :func:`advance`.

    Only an earlier moment than ``next_due`` matters: every rule of :func:`_deadline`
    starts at or after the last activity, so a process whose idle limit from its last
    line ends after ``next_due`` needs no deadline computed now.
    """
    if state.next_due is not None and not proc.draining:
        schedule_idle(state, proc, limits(state, proc.service, proc.daemon)[0])
    else:
        schedule_idle(state, proc, 0.0)


def schedule_idle(state: EngineState, proc: Process, idle: float | None) -> None:
    """:func:`schedule` with the process's ``max_idle`` (from :func:`limits`) at hand."""
    due = state.next_due
    if due is not None:
        delay = 0.0
        if not proc.draining:
            if idle is None:
                return  # no idle exit at all (and not draining): nothing to register
            delay = idle
        # the sum in the order _touch_due gets it below: never more than that value
        if due <= proc.last_activity_at + delay + state.resolution() + state.settings.margin:
            return
    found = _deadline(state, proc)
    if found is not None:
        base, delay, _ = found
        _touch_due(state, base + delay + state.resolution() + state.settings.margin)


def contacts_rewrite(state: EngineState, client: Process, ev: LogEvent) -> bool:
    """Whether a log line of ``client`` shows a request to trivial-rewrite.

    smtpd asks while it checks MAIL FROM and RCPT TO (src/smtpd/smtpd_resolve.c:122-124):
    its ``client=`` (first accepted recipient) and ``NOQUEUE: reject`` lines show that;
    its ``disconnect`` line only when it reports more than one RCPT (later ones asked
    again, after the ``client=`` line) (src/smtpd/smtpd.c, the session statistics).

    qmgr resolves a message's recipients when it moves it into the active queue, right
    after logging ``from=`` (src/qmgr/qmgr_message.c:659,1041); its later lines for the
    message (the delivery results it logs, ``removed``, src/qmgr/qmgr_active.c:582) ask
    nothing. The log fast path keeps only the queue id, so the first qmgr line of a queue
    id is taken as the active-queue line, and so is one after a pause of
    :data:`QMGR_PASS` seconds (a deferred message back from the deferred queue). A
    message flushed back within that time is missed (its resolve counts as the pass's).
    A delivery agent's line stands in for qmgr's request when no qmgr line of the queue
    id was seen (:data:`~pfwatch.knowledge.daemons.RESOLVED_BEFORE`).
    """
    name = spec_for(client.daemon).name
    queue_id, at = ev.fields.get("queue_id", ""), ev.at
    if ev.kind in ("session_disconnect", "session_abort"):
        found = _RCPTS.search(ev.fields.get("stats", ""))
        return found is not None and int(found.group(2) or found.group(1)) > 1
    if name in RESOLVED_BEFORE:
        tracker = state.trackers.get(client.instance)
        return bool(queue_id) and (tracker is None or queue_id not in tracker.queue_lines)
    if name not in REWRITE_CLIENTS:
        return False
    if name not in QMGRS or not queue_id:
        return True
    tracker = state.trackers.setdefault(client.instance, ClientTracker())
    lines = tracker.queue_lines
    last = lines.pop(queue_id, None)
    lines[queue_id] = at
    if len(lines) > QUEUE_LINES_KEPT:
        for old in list(lines)[: QUEUE_LINES_KEPT // 2]:
            del lines[old]
    return last is None or at - last > QMGR_PASS


def client_use(state: EngineState, client: Process, at: float, findings: list[Finding]) -> None:
    """A rewrite/resolve client used trivial-rewrite at ``at`` (proof that one runs)."""
    if not state.proc_authoritative():
        _retire_rewriters(state, client.instance, at, findings)
    tracker = state.trackers.get(client.instance)
    if tracker is None:
        tracker = state.trackers[client.instance] = ClientTracker()
    ipc_idle, ttl = ipc_limits(state)
    held = tracker.clients.get(client.key)
    if held is not None and at - held[0] >= ttl:
        tracker.disconnects += 1
        held = None
    tracker.clients[client.key] = [held[0] if held else at, at]
    tracker.zero_since = tracker.last_gone = None
    tracker.last_use = at
    let_go = at + ipc_idle
    if state.next_due is None or let_go < state.next_due:  # _touch_due, inlined
        state.next_due = let_go
    if not state.proc_authoritative():
        index = state.lookups if state.lookups.built else lookups(state)
        rewriters = index.rewriters.get(client.instance)
        if not rewriters:
            phantom = started(
                state,
                client.instance,
                "",
                "trivial-rewrite",
                0,
                at,
                findings,
                inferred=True,
                basis="inferred",
                note=(
                    f"{client.label} needed address rewriting/resolving; trivial-rewrite "
                    "writes no line of its own, so its birth is inferred (at or before)"
                ),
            )
            tracker.disconnects = 0
            phantom.last_activity_at = at
            return
        for p in rewriters.values():
            p.last_activity_at = max(p.last_activity_at, at)


def _retire_rewriters(
    state: EngineState, instance: str, at: float, findings: list[Finding]
) -> None:
    """A request stamped in or after the second in which a trivial-rewrite's idle timer is
    due went to a new one: the old one had exited, or exits on that very wake-up.

    Postfix timers are due in whole seconds and run before the I/O events of the same
    wake-up (``TIMINGS["timer_granularity"]``), so the idle timer armed when the last
    client let go (src/master/multi_server.c:335-336) is due in the second
    ``floor(let go) + max_idle``; a connection arriving in that second wakes the process,
    which exits in multi_server_timeout (multi_server.c:284-288) before accepting it, and
    the master starts a new process for the client. The exit is bounded by the idle
    deadline and by the request, not pushed by the request (the margin for late log
    lines is not waited for: this line already settles it).
    """
    found = lookups(state).rewriters.get(instance)
    if not found:
        return
    res = state.resolution()
    grain = TIMINGS["timer_granularity"][0]
    for proc in list(found.values()):
        timer = _deadline(state, proc)
        if timer is None:
            continue
        base, delay, rule = timer
        if at < math.floor(base / grain) * grain + delay:
            continue
        estimate = min(base + delay + res / 2, at + res / 2)
        latest = min(base + delay + res, at + res)
        tracker = state.trackers.get(instance)
        if tracker is not None:
            proc.clients_gone_at = tracker.zero_since
        exited(
            state,
            proc,
            estimate,
            "idle_timeout",
            "inferred",
            f"silent past its idle limit: {_rule_text(state, proc, rule, delay)}; the next "
            f"request (at {at:.0f}) came in or after the second its idle timer was due "
            f"({TIMINGS['timer_granularity'][1]}): a new process served it",
            findings,
            latest=latest,
        )


def lock_wait(state: EngineState, client: Process) -> float:
    """When an idle single-server ``client`` can run its timers again (0: now).

    Idle processes of a service with more than one process take turns on an accept lock
    and, waiting for it, sleep in flock() outside their event loop
    (src/master/single_server.c:725-742,810-819), so their timers (the ipc_idle one that
    drops the trivial-rewrite connection, and max_idle) fire only once they hold it. The
    lock passes in the order the processes went idle; without new connections it passes
    when the holder exits. So a waiter can act no earlier than the idle exits of the
    processes that went idle before it.
    """
    spec = spec_for(client.daemon)
    if spec.skeleton != "single" or client.session_open:
        return 0.0
    facts = service_facts(state, client.service, client.daemon)
    if facts is not None and facts.process_limit == 1:
        return 0.0  # alone: no lock (single_server.c:732)
    mine = client.last_session_end_at or client.last_activity_at
    ahead = 0.0
    for other in state.processes.values():
        if (
            other is client
            or other.inferred
            or other.session_open
            or other.daemon != client.daemon
            or other.service != client.service
            or other.instance != client.instance
        ):
            continue
        if (other.last_session_end_at or other.last_activity_at) > mine:
            continue
        deadline = idle_deadline(state, other)
        if deadline is not None:
            ahead = max(ahead, deadline[1] - state.resolution())
    return ahead


def client_let_go(state: EngineState, key: str, last: float) -> float:
    """When a trivial-rewrite client lets go: ``ipc_idle`` after its last request
    (clnt_stream.c:174-182, 226-242), once it runs its timers (:func:`lock_wait`)."""
    ipc_idle, _ = ipc_limits(state)
    client = state.processes.get(key)
    if client is None:
        return last + ipc_idle
    # timers fire in the event loop, which a single server enters after its session
    ended = client.last_session_end_at or 0.0
    return max(last + ipc_idle, ended, lock_wait(state, client))


def advance_trackers(state: EngineState, now: float) -> None:
    """Let clients go once their ipc_idle timer fired (:func:`client_let_go`)."""
    rewriters = lookups(state).rewriters
    res = state.resolution()
    for instance, tracker in state.trackers.items():
        pending: list[float] = []
        leaving: list[tuple[float, str]] = []
        for key, (_, last) in tracker.clients.items():
            client = state.processes.get(key)
            if client is not None and client.session_open:
                continue
            let_go = client_let_go(state, key, last)
            if let_go + res <= now:
                leaving.append((let_go, key))
            else:
                pending.append(let_go + res)
        for let_go, key in sorted(leaving):
            del tracker.clients[key]
            _client_gone(tracker, let_go)
        if pending:
            _touch_due(state, min(pending))
        for proc in list(rewriters.get(instance, {}).values()):
            schedule(state, proc)


def advance(state: EngineState, now: float, findings: list[Finding]) -> None:
    """Turn silence up to ``now`` into inferred exits (never before latest + margin)."""
    if state.next_due is not None and now < state.next_due:
        return
    authoritative = state.proc_authoritative()  # exits below change neither now nor polls
    state.next_due = None
    advance_trackers(state, now)
    margin = state.settings.margin
    res = state.resolution()
    for proc in list(state.processes.values()):
        if authoritative and not proc.inferred:
            # /proc decides; should the polls stop, inference takes over again
            _touch_due(state, (state.proc_seen_at or now) + state.settings.proc_fresh)
            continue
        tracker = state.trackers.get(proc.instance)
        rewriter = proc.daemon == "trivial-rewrite"
        max_use = limits(state, proc.service, proc.daemon)[1] if rewriter else None
        if (
            rewriter
            and max_use
            and tracker is not None
            and not tracker.clients
            and tracker.disconnects >= max_use
            and tracker.zero_since is not None
        ):
            exited(
                state,
                proc,
                tracker.zero_since,
                "use_limit",
                "inferred",
                f"{tracker.disconnects} client disconnects >= max_use {max_use} with no "
                "client connected (src/master/multi_server.c:919); exits silently",
                findings,
            )
            continue
        found = _deadline(state, proc)
        if found is None:
            continue
        base, delay, rule = found
        latest = base + delay + res
        if now >= latest + margin:
            if tracker is not None and proc.daemon == "trivial-rewrite":
                proc.clients_gone_at = tracker.zero_since
            silent = "" if proc.verbose else "; without -v Postfix logs no exit line"
            reason = proc.drain_reason if proc.draining else "idle_timeout"
            exited(
                state,
                proc,
                base + delay + res / 2,
                reason,
                "inferred",
                f"silent past its idle limit: {_rule_text(state, proc, rule, delay)}{silent}",
                findings,
                latest=latest,
            )
        else:
            _touch_due(state, latest + margin)
    if state.next_due is None:
        state.next_due = NEVER
