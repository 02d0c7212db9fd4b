"""Apply observations (log events, /proc polls) to the process model.

Which log kinds (see the LogEvent.kind contract) open or close sessions, prove use,
or show an exit; a new pid of a one-process service retires the old one; /proc polls
give exact births and exits, and while they are fresh a logged exit waits for /proc to
confirm it (a line claiming the exit of a process /proc still shows a few seconds later
becomes ``log_line_untrusted``). Master and postfix-script lines go to
:mod:`pfwatch.core.master_events`. Pure: no I/O, no clock. Inputs: the state, one
event. Outputs: state mutations and appended findings. Errors: none.
"""

from __future__ import annotations

from pfwatch.core import interval, master_events
from pfwatch.core import processes as pm
from pfwatch.core.state import EngineState, Process
from pfwatch.events import Finding, LogEvent, ProcessInfo, ProcessTableSeen
from pfwatch.knowledge.daemons import COMMANDS, spec_for

SESSION_OPEN = frozenset(
    {"session_connect", "postscreen_connect", "verbose_connection_established"}
)
SESSION_CLOSE = frozenset(
    {
        "session_disconnect",
        "session_abort",
        "postscreen_disconnect",
        "postscreen_pass",
        "verbose_connection_closed",
    }
)
CLIENT_USE = frozenset({"message_activity", "noqueue", "session_disconnect", "session_abort"})
MASTER_DAEMONS = frozenset({"master", "postfix-script"})
RECENT_EXITS = 512
EXIT_CLAIM_GRACE = 3.0
"""Seconds a process may stay in /proc after a log line said it exits (it logs, then
cleans up and exits; a poll runs every second)."""
BIRTH_EVIDENCE = SESSION_OPEN | {
    "verbose_process_generation",
    "verbose_daemon_started",
    "message_activity",
    "table_changed",
    "database_older",
}
"""A first line of another kind (a disconnect, a -v trace) means the process was already
running before it: its birth is unknown."""


EXIT_KINDS = frozenset(
    {
        "verbose_idle_timeout",
        "table_changed",
        "table_changed_draining",
        "verbose_master_disconnect",
        "verbose_retire",
        "diagnostic",
    }
)
"""The kinds :func:`_observed_exit` acts on (a diagnostic only when fatal or a panic)."""


def apply_log(state: EngineState, ev: LogEvent, findings: list[Finding]) -> None:
    """Fold one classified log line into the process model."""
    daemon = ev.daemon
    if daemon in MASTER_DAEMONS:
        master_events.apply(state, ev, findings)
        return
    if ev.pid <= 0 or not daemon or daemon in COMMANDS:
        return
    proc = state.processes.get(pm.process_key(ev.instance, daemon, ev.pid))
    if proc is None:
        proc = _process_for(state, ev, findings)
        if proc is None:
            return
    kind = ev.kind
    at = ev.at
    if kind.startswith("verbose_"):
        proc.verbose = True
        if kind == "verbose_process_generation" and proc.first_seen_at >= at:
            proc.born_at, proc.born_exact = at, True
    claim = _exit_claim(ev) if kind in EXIT_KINDS else None
    # a line announcing the exit is no activity (the deadline stands); max() costs a call
    if claim is None and at > proc.last_activity_at:
        proc.last_activity_at = at
    spec = spec_for(daemon)
    idle, max_use = pm.limits(state, proc.service, daemon)
    if kind == "message_activity":
        queue_id = ev.fields.get("queue_id", "")
        if proc.session_open and spec.name == "smtpd":
            if queue_id and queue_id != proc.last_queue_id:
                proc.last_queue_id, proc.queue_opened_at = queue_id, at
        elif not proc.session_open and not proc.verbose:
            if queue_id and queue_id != proc.last_queue_id:
                proc.last_queue_id = queue_id
                proc.sessions += 1
                proc.uses += 1
                interval.note_arrival(state, interval.rate_key(proc), at)
                if spec.name == "cleanup":  # every queued message passes cleanup once
                    interval.note_arrival(state, f"{proc.instance}/trivial-rewrite", at)
                proc.last_session_end_at = at
                if max_use and proc.uses >= max_use:
                    proc.draining, proc.drain_reason = True, "use_limit"
            else:
                proc.last_session_end_at = at
    elif spec.skeleton in ("multi", "event") and kind in (
        "verbose_connection_established",
        "verbose_connection_closed",
    ):
        _client_line(state, proc, kind, at, findings)
    elif kind in SESSION_OPEN:
        if (
            proc.born_at is None
            and proc.sessions == 0
            and (at - proc.first_seen_at <= state.resolution())
        ):
            # a warning logged while accepting its first connection came first
            proc.born_at = proc.first_seen_at
        if not proc.session_open:
            proc.session_open = True
            proc.session_started_at = at
            proc.sessions += 1
            proc.uses += 1
            interval.note_arrival(state, interval.rate_key(proc), ev.at)
    elif kind in SESSION_CLOSE:
        _session_closed(state, proc, at, findings)
    if kind in CLIENT_USE and pm.contacts_rewrite(state, proc, ev):
        pm.client_use(state, proc, at, findings)
        if kind == "noqueue":  # a refused message asked too (it never reaches cleanup)
            interval.note_arrival(state, f"{proc.instance}/trivial-rewrite", at)
    if claim is not None:
        _observed_exit(state, proc, ev, claim, findings)
    if proc.exited_at is None:
        pm.schedule_idle(state, proc, idle)


def _process_for(state: EngineState, ev: LogEvent, findings: list[Finding]) -> Process | None:
    key = pm.process_key(ev.instance, ev.daemon, ev.pid)
    proc = state.processes.get(key)
    if proc is not None:
        return proc
    # only recent exits matter (late last words, wrong inferences); older pids are reused
    previous = None
    if key in pm.lookups(state).exited_keys:
        previous = next((p for p in reversed(state.history[-RECENT_EXITS:]) if p.key == key), None)
    if previous is not None and previous.exited_at is not None:
        grace = previous.exited_at + state.resolution() + 0.5
        if ev.at <= grace:
            return None  # last words of a process already known to have exited
        idle, _ = pm.limits(state, previous.service, previous.daemon)
        if previous.exit_basis == "inferred" and ev.at - previous.exited_at <= (idle or 0):
            return _revive(state, previous, ev, findings)
    if ev.kind in BIRTH_EVIDENCE:
        proc = pm.started(state, ev.instance, ev.service, ev.daemon, ev.pid, ev.at, findings)
        if ev.kind == "message_activity" and spec_for(ev.daemon).name == "cleanup":
            opened = _queue_opened_at(state, ev.instance, ev.fields.get("queue_id", ""))
            if opened is not None and opened < ev.at:
                proc.born_at = opened  # its first line comes only at the end of DATA
        _replaces(state, proc, findings)
        return proc
    proc = pm.started(
        state,
        ev.instance,
        ev.service,
        ev.daemon,
        ev.pid,
        ev.at,
        findings,
        note=f"first line ({ev.kind}) shows it was already running: born earlier",
    )
    proc.born_at = None
    _replaces(state, proc, findings)
    return proc


def _queue_opened_at(state: EngineState, instance: str, queue_id: str) -> float | None:
    """When an smtpd logged ``client=`` for ``queue_id`` (None: no smtpd did)."""
    if not queue_id:
        return None
    for other in state.processes.values():
        opened = other.queue_opened_at
        if opened is not None and other.last_queue_id == queue_id and other.instance == instance:
            return opened
    return None


def _replaces(state: EngineState, proc: Process, findings: list[Finding]) -> None:
    """A new pid of a one-process service means the previous one is gone."""
    facts = pm.service_facts(state, proc.service, proc.daemon)
    solitary = spec_for(proc.daemon).solitary or (facts is not None and facts.process_limit == 1)
    if not solitary:
        return
    for old in list(state.processes.values()):
        if (
            old is proc
            or old.inferred
            or old.daemon != proc.daemon
            or old.instance != proc.instance
            or old.service != proc.service
        ):
            continue
        deadline = pm.idle_deadline(state, old)
        estimate = min(deadline[0], proc.first_seen_at) if deadline else proc.first_seen_at
        pm.exited(
            state,
            old,
            max(estimate, old.last_activity_at),
            old.drain_reason
            or ("idle_timeout" if deadline and deadline[0] <= proc.first_seen_at else "unknown"),
            "inferred",
            f"{proc.label} started and {old.daemon} runs at most one process (process "
            "limit 1, src/master/mail_server.h:34-49): the old one had exited",
            findings,
            latest=proc.first_seen_at,
        )


def _revive(state: EngineState, proc: Process, ev: LogEvent, findings: list[Finding]) -> Process:
    """A process inferred to have exited logged again: the inference was wrong."""
    history = state.history
    for index in range(len(history) - 1, -1, -1):  # it is among the recent exits
        if history[index] is proc:
            del history[index]
            break
    findings.append(
        Finding(
            "process_exit_retracted",
            ev.at,
            "observed",
            {
                "process": proc.key,
                "service": proc.service,
                "daemon": proc.daemon,
                "pid": proc.pid,
                "inferred_exit": proc.exited_at,
                "reason": proc.exit_reason,
                "explanation": f"{proc.label} logged again at {ev.at:.0f}: still alive",
            },
        )
    )
    draining = proc.exit_reason == "reload"
    proc.exited_at = proc.exit_latest = None
    proc.exit_reason = proc.exit_basis = None
    proc.exit_note = ""
    if draining:
        proc.draining, proc.drain_reason = True, "reload"
    state.processes[proc.key] = proc
    pm.registered(state, proc)
    return proc


def _client_line(
    state: EngineState, proc: Process, kind: str, at: float, findings: list[Finding]
) -> None:
    """A multi/event server's -v line for one client connection (multi_server.c:325-336)."""
    proc.client_lines = True
    if kind == "verbose_connection_established":
        proc.clients += 1
        return
    proc.clients = max(0, proc.clients - 1)
    proc.uses += 1
    proc.sessions += 1
    if proc.clients == 0:
        proc.last_session_end_at = at
        _, max_use = pm.limits(state, proc.service, proc.daemon)
        if max_use and proc.uses >= max_use:
            pm.exited(
                state,
                proc,
                at,
                "use_limit",
                "inferred",
                f"{proc.uses} client disconnects >= max_use {max_use} and no client "
                "left (src/master/multi_server.c:919); exits silently",
                findings,
            )


def _session_closed(state: EngineState, proc: Process, at: float, findings: list[Finding]) -> None:
    proc.session_open = False
    proc.last_session_end_at = at
    _, max_use = pm.limits(state, proc.service, proc.daemon)
    if state.proc_authoritative() and not proc.inferred:
        # /proc will show the exit itself; only remember why it is coming
        if not proc.draining and max_use and proc.uses >= max_use:
            proc.draining, proc.drain_reason = True, "use_limit"
        return
    if proc.draining and proc.drain_reason == "reload":
        pm.exited(
            state,
            proc,
            at,
            "reload",
            "inferred",
            "finished the session it was serving at the reload, then exited "
            "(src/master/single_server.c:280-306)",
            findings,
        )
    elif max_use and proc.uses >= max_use:
        pm.exited(
            state,
            proc,
            at,
            "use_limit",
            "inferred",
            f"served {proc.uses} connections = max_use {max_use}; exits silently "
            "after the last one (src/master/single_server.c:810-821)",
            findings,
        )


def _exit_claim(ev: LogEvent) -> tuple[str, str] | None:
    """The exit reason and note a log line states, or None when it states no exit."""
    kind = ev.kind
    if kind == "verbose_idle_timeout":
        return "idle_timeout", '"idle timeout -- exiting" (-v; src/master/single_server.c:268-269)'
    if kind in ("table_changed", "table_changed_draining"):
        table = ev.fields.get("table", "?")
        how = "drains in the background" if kind == "table_changed_draining" else "exits"
        return "table_changed", (
            f"table {table} changed: the process {how} before its next request "
            "(src/util/dict.c:583-609)"
        )
    if kind == "verbose_master_disconnect":
        mode = ev.fields.get("mode", "exiting")
        return "reload", f'"master disconnect -- {mode}" (-v; single_server.c:259-260)'
    if kind == "verbose_retire":
        return "use_limit", '"time to retire" (-v; single_server.c:250-251)'
    if kind == "diagnostic" and ev.fields.get("severity") in ("fatal", "panic"):
        return "crash", f"{ev.fields.get('severity')}: {ev.fields.get('text', '')}"[:200]
    return None


def _observed_exit(
    state: EngineState,
    proc: Process,
    ev: LogEvent,
    claim: tuple[str, str],
    findings: list[Finding],
) -> None:
    reason, note = claim
    if proc.draining and proc.drain_reason == "reload" and reason == "reload":
        # the master's reload line (its pid vouched for by /proc) already ended the
        # process's life; its own "master disconnect" line dates the exit
        pm.exited(state, proc, ev.at, reason, "observed", note, findings)
        return
    drains = ev.kind == "table_changed_draining"
    pm.claim_exit(state, proc, ev.at, reason, "observed", note, findings, drains=drains)


def apply_proc(state: EngineState, ev: ProcessTableSeen, findings: list[Finding]) -> list[str]:
    """Fold a complete /proc poll: new processes are born, missing ones have exited.

    Returns the keys of known processes whose start time /proc has just dated (their first
    log line only bounded it): the caller reconsiders their staleness."""
    first = state.proc_seen_at is None
    previous_poll = state.proc_seen_at
    state.proc_seen_at = ev.at
    seen = {pm.process_key(i.instance, i.daemon, i.pid): i for i in ev.processes}
    for proc in [p for p in state.processes.values() if p.inferred]:
        pm.exited(
            state,
            proc,
            ev.at,
            "unknown",
            "inferred",
            "placeholder for a process invisible in the log; /proc now shows the truth",
            findings,
        )
    _confirm_inferred_exits(state, seen, ev.at, previous_poll)
    dated: list[str] = []
    for key, info in seen.items():
        known = state.processes.get(key)
        if known is None:
            if any(
                p.key == key and (p.exited_at or 0) >= info.started_at for p in state.history[-200:]
            ):
                continue
            pm.started(
                state,
                info.instance,
                info.service,
                info.daemon,
                info.pid,
                ev.at,
                findings,
                born_at=info.started_at,
                note="seen in /proc" + (" (already running)" if first else ""),
            )
        else:
            if not known.born_exact:
                # /proc dates the start to 1/100 s; a first log line only bounds it, its
                # stamp (cut to the second) up to a resolution before the line was written
                bound = (known.born_at or ev.at) + state.resolution()
                known.born_at, known.born_exact = min(info.started_at, bound), True
                dated.append(key)
            if known.exit_claim_at is not None:
                _claim_still_alive(state, known, ev.at, findings)
    for proc in list(state.processes.values()):
        if proc.key in seen or proc.inferred:
            continue
        claimed = proc.exit_claim_at
        if claimed is not None:
            # /proc confirms that it exited; the line it logged says when
            at = max(claimed, previous_poll or claimed)
            pm.exited(
                state,
                proc,
                at,
                proc.exit_claim_reason,
                "observed",
                f"{proc.exit_claim_note}; gone from /proc",
                findings,
                latest=min(ev.at, at + state.resolution()),
            )
            continue
        pm.exited(
            state,
            proc,
            ev.at,
            _guess_reason(state, proc, ev.at),
            "observed",
            "gone from /proc"
            + (
                f" (between {previous_poll:.2f} and {ev.at:.2f})"
                if previous_poll is not None
                else ""
            ),
            findings,
            latest=ev.at,
        )
    return dated


CONFIRM_RECENT = 64
"""Exited processes (newest first) a poll looks at to confirm exits known by inference."""


def _confirm_inferred_exits(
    state: EngineState, seen: dict[str, ProcessInfo], at: float, previous_poll: float | None
) -> None:
    """A poll that does not list a process whose exit the log only implied (a use limit
    reached, no exit line) proves it gone by then: the exit is confirmed and, as for any
    exit /proc shows, bounded by that poll, so no log-delay margin is waited for."""
    for proc in state.history[-1 : -CONFIRM_RECENT - 1 : -1]:
        if proc.exit_basis == "observed" or proc.key in seen or proc.exited_at is None:
            continue
        if previous_poll is not None and proc.exited_at < previous_poll:
            continue  # exited before the poll before: that one confirmed it already
        proc.exit_basis = "observed"
        proc.exit_latest = at
        proc.exit_note = f"{proc.exit_note}; gone from /proc at {at:.2f}".lstrip("; ")


def _claim_still_alive(
    state: EngineState, proc: Process, at: float, findings: list[Finding]
) -> None:
    """A process a log line said was exiting is still in /proc: past the grace, the line
    lied (written by someone else); report it and forget the claim."""
    claimed = proc.exit_claim_at
    assert claimed is not None
    if proc.exit_claim_drains or at - claimed <= EXIT_CLAIM_GRACE + state.resolution():
        return
    findings.append(
        Finding(
            "log_line_untrusted",
            at,
            "observed",
            {
                "reason": "exit_contradicted",
                "daemon": proc.daemon,
                "pid": proc.pid,
                "process": proc.key,
                "service": proc.service,
                "line_at": claimed,
                "claimed": proc.exit_claim_reason,
                "note": f"the log said {proc.label} exits ({proc.exit_claim_note}); "
                f"/proc still shows it {at - claimed:.1f} s later",
            },
        )
    )
    proc.exit_claim_at = None
    proc.exit_claim_reason = proc.exit_claim_note = ""


def _guess_reason(state: EngineState, proc: Process, at: float) -> str:
    if proc.draining:
        return proc.drain_reason
    _, max_use = pm.limits(state, proc.service, proc.daemon)
    if max_use and proc.uses >= max_use:
        return "use_limit"
    deadline = pm.idle_deadline(state, proc)
    if deadline is not None and at >= deadline[0] - 1.0:
        return "idle_timeout"
    return "unknown"


def refresh_services(state: EngineState) -> None:
    """Re-resolve service names of processes seen before the configuration was known."""
    if state.facts is None:
        return
    for proc in state.processes.values():
        facts = pm.service_facts(state, proc.service, proc.daemon)
        if facts is not None and facts.name != proc.service:
            proc.service = facts.name
