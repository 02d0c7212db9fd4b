"""What the master's start, reload, stop and child-exit warnings do to every process.

Reload: idle children exit at once, busy ones after their current request
(src/master/master.c:582-590; single_server.c:257-262, 280-306); with /proc visible they
are only marked and /proc shows the exit. Stop: the master kills its process group
(master_sig.c:196). Child warnings: an observed crash or kill (master_spawn.c:331-336).
Stop and child exits are claims a forged line could make: with /proc fresh they wait for
/proc to confirm them (:func:`pfwatch.core.processes.claim_exit`).
Start: a master that logs another release than the last one of its instance is an upgrade
(``postfix_upgraded``); each process keeps the release of the master it was born under.
Pure. Inputs: the state and one master/postfix-script LogEvent. Outputs: state mutations
and findings. Errors: none.
"""

from __future__ import annotations

from pfwatch.core import processes as pm
from pfwatch.core.records import MasterStart, Reload
from pfwatch.core.state import EngineState
from pfwatch.events import Basis, Finding, LogEvent
from pfwatch.knowledge import releases

RELOAD_NOTE = (
    "postfix reload: the master closed the status pipe; idle children exit at "
    "once, busy ones after their current request (src/master/master.c:582-590; "
    "single_server.c:257-262,280-306)"
)
STOP_NOTE = "postfix stop: the master kills its whole process group (src/master/master_sig.c:196)"


def apply(state: EngineState, ev: LogEvent, findings: list[Finding]) -> None:
    kind, inst = ev.kind, ev.instance
    if kind == "master_started":
        _end_all(
            state, inst, ev.at, STOP_NOTE + " (a new master started)", findings, keep_master=False
        )
        version = ev.fields.get("version", "")
        before = state.master.get(inst)
        state.master[inst] = MasterStart(ev.pid, ev.at, version)
        pm.started(state, inst, "master", "master", ev.pid, ev.at, findings)
        findings.append(
            Finding(
                "postfix_started",
                ev.at,
                "observed",
                {"instance": inst, "pid": ev.pid, "version": version},
            )
        )
        _release_findings(inst, before, version, ev.at, findings)
    elif kind == "master_reloaded":
        state.reloads.append(Reload(inst, ev.at))
        if pm.process_key(inst, "master", ev.pid) not in state.processes and ev.pid > 0:
            pm.started(state, inst, "master", "master", ev.pid, ev.at, findings)
        for proc in [p for p in state.processes.values() if p.instance == inst]:
            if proc.daemon == "master":
                continue
            if proc.session_open or (state.proc_authoritative() and not proc.inferred):
                proc.draining, proc.drain_reason = True, "reload"
            else:
                pm.exited(state, proc, ev.at, "reload", "inferred", RELOAD_NOTE, findings)
        findings.append(Finding("postfix_reloaded", ev.at, "observed", {"instance": inst}))
    elif kind in ("master_stopped", "master_exit_time"):
        _end_all(state, inst, ev.at, STOP_NOTE, findings, keep_master=False)
        findings.append(
            Finding(
                "postfix_stopped",
                ev.at,
                "observed",
                {"instance": inst, "signal": ev.fields.get("signal", "")},
            )
        )
    elif kind in ("child_exit_status", "child_killed"):
        daemon = ev.fields.get("child_daemon", "") or ev.fields.get("path", "").rsplit("/")[-1]
        try:
            pid = int(ev.fields.get("child_pid", "0"))
        except ValueError:
            return
        child = state.processes.get(pm.process_key(inst, daemon, pid))
        if child is not None:
            reason = "killed" if kind == "child_killed" else "crash"
            detail = (
                f"signal {ev.fields.get('signal')}"
                if kind == "child_killed"
                else f"exit status {ev.fields.get('status')}"
            )
            pm.claim_exit(
                state,
                child,
                ev.at,
                reason,
                "observed",
                f"master reported {detail} (src/master/master_spawn.c:331-336)",
                findings,
            )


def _release_findings(
    inst: str, before: MasterStart | None, version: str, at: float, findings: list[Finding]
) -> None:
    """``postfix_upgraded`` when the release changed between two master starts of one
    instance; ``postfix_release_unparsed`` for a version pfwatch cannot read (its
    processes are then judged with the nearest table, or the shipped one)."""
    if not version:
        return
    if before is not None and before.version and before.version != version:
        findings.append(
            Finding(
                "postfix_upgraded",
                at,
                "observed",
                {"instance": inst, "from": before.version, "to": version},
            )
        )
    if releases.parse_version(version) is None:
        choice = releases.choose(version)
        findings.append(
            Finding(
                "postfix_release_unparsed",
                at,
                "observed",
                {"instance": inst, "version": version, "table": choice.table, "note": choice.note},
            )
        )


def _end_all(
    state: EngineState,
    inst: str,
    at: float,
    note: str,
    findings: list[Finding],
    *,
    keep_master: bool,
) -> None:
    for proc in [p for p in state.processes.values() if p.instance == inst]:
        if keep_master and proc.daemon == "master":
            continue
        basis: Basis = "observed" if proc.daemon == "master" else "inferred"
        pm.claim_exit(state, proc, at, "stop", basis, note, findings)
