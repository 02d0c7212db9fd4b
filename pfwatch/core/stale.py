"""Which processes a change leaves stale, including ones not seen yet.

A process is stale for a change when it started before the change (a master.cf edit:
before the reload that applies it) and serves an affected service. Processes that may
exist without having logged are listed as "unseen" with the time they must be gone by.
Pure. Inputs: the state and a change. Outputs: mutations of the change. Errors: none.
"""

from __future__ import annotations

from dataclasses import replace

from pfwatch.core import routing_cache
from pfwatch.core.records import Impact, Unseen
from pfwatch.core.state import Change, EngineState, Process
from pfwatch.knowledge.daemons import TIMINGS, spec_for
from pfwatch.knowledge.params import release_lacks

ALWAYS_RUNNING = frozenset({"qmgr", "oqmgr", "pickup"})
"""Started by master at once because of their wakeup (src/master/master_wakeup.c:165-175)."""
STALE_MODES = frozenset({"restart", "reload", "table_check", "table_check_10s"})


def matches(proc: Process, impact: Impact) -> bool:
    if spec_for(proc.daemon).name != impact.daemon:
        return False
    return not proc.service or proc.service == impact.service or proc.inferred


def _release_ignores(proc: Process, impact: Impact) -> bool:
    """A process of a release that reads none of the edited parameters (a log that mixes
    releases: each process is judged by the release its master ran when it was born)."""
    if not proc.release or not impact.via or impact.mode == "reload":
        return False
    return all(release_lacks(proc.release, impact.daemon, name) for name in impact.via)


def _masters_ignore(state: EngineState, impact: Impact) -> bool:
    """Processes not seen yet are born under the running masters: none of them reads the
    edited parameters when every master's release lacks them."""
    versions = [m.version for m in state.master.values()]
    if not versions or not all(versions) or not impact.via or impact.mode == "reload":
        return False
    return all(
        release_lacks(version, impact.daemon, name) for version in versions for name in impact.via
    )


def select_stale(state: EngineState, change: Change) -> None:
    """Processes that started before the change and serve an affected service."""
    res = state.resolution()
    for impact in change.impacts:
        mode = impact.mode
        if mode not in STALE_MODES:
            continue
        procs = [
            p
            for p in state.processes.values()
            if matches(p, impact)
            and p.first_seen_at <= change.at
            and born_before(p, change.at)
            and not _release_ignores(p, impact)
        ]
        for proc in procs:
            if mode == "table_check" and not proc.session_open:
                continue
            if mode == "table_check" and proc.key not in change.until_session_end:
                change.until_session_end.append(proc.key)
            if proc.key not in change.stale:
                change.stale.append(proc.key)
            if mode == "table_check_10s":
                check = TIMINGS["trivial_rewrite_table_check"][0]
                change.stale_until[proc.key] = change.at + check + res
        if impact.daemon == "cleanup" and not state.proc_authoritative():
            _transactions_in_flight(state, change, impact)
        if procs or state.proc_authoritative() or mode.startswith("table_check"):
            continue
        if _masters_ignore(state, impact):
            continue
        _unseen(state, change, impact)


def _transactions_in_flight(state: EngineState, change: Change, impact: Impact) -> None:
    """An smtpd transaction open at the change has a cleanup connected since its
    ``client=`` line (src/smtpd/smtpd.c mail_open_stream), which logs its first line only
    at the end of DATA: from the log alone that cleanup may predate the change unseen. It
    is settled when a cleanup logs the queue id (it is then known, and stale when it
    predates the change) or when the session ends without one."""
    known = {
        p.last_queue_id
        for p in state.processes.values()
        if spec_for(p.daemon).name == "cleanup" and p.last_queue_id
    }
    held = {u.queue_id for u in change.unseen if u.queue_id}
    for proc in state.processes.values():
        queue_id, opened = proc.last_queue_id, proc.queue_opened_at
        if (
            not proc.session_open
            or opened is None
            or opened > change.at
            or queue_id in known
            or queue_id in held
        ):
            continue
        change.unseen.append(
            Unseen(
                service=impact.service,
                daemon=impact.daemon,
                until=None,
                why=(
                    f"{proc.label} opened queue file {queue_id}: the cleanup it is connected "
                    "to logs only at the end of DATA and may predate the change"
                ),
                queue_id=queue_id,
            )
        )
        held.add(queue_id)


def queue_file_settled(state: EngineState, queue_id: str, at: float) -> None:
    """A cleanup logged ``queue_id``, or the smtpd session that opened it ended: unseen
    entries held for it are settled at ``at`` (a cleanup now logged is known, and stale
    when it predates the change)."""
    if not queue_id:
        return
    for change in state.changes.values():
        if change.status == "live" or not change.unseen:
            continue
        for index, entry in enumerate(change.unseen):
            if entry.queue_id == queue_id and entry.resolved_at is None:
                change.unseen[index] = replace(entry, resolved_at=max(at, change.at))


def _unseen(state: EngineState, change: Change, impact: Impact) -> None:
    daemon, res = impact.daemon, state.resolution()
    until: float | None = None
    if daemon in ALWAYS_RUNNING:
        if impact.mode == "reload":
            why = (
                f"master keeps a {daemon} running (src/master/master_wakeup.c:"
                "165-175); it has not logged yet and exits only on reload"
            )
        else:
            wakeup = TIMINGS["pickup_wakeup"][0]
            until = change.at + impact.max_use * wakeup
            why = (
                f"master keeps a {daemon} running; every {wakeup:g} s wakeup "
                f"counts as a use, so it exits within {impact.max_use} wakeups"
            )
    elif impact.mode == "reload":
        return
    else:
        if daemon == "proxymap" and not _proxy_used(state):
            return
        began = state.log_began_at if state.log_began_at is not None else change.at
        until = began + float(impact.max_idle) + res
        if until <= change.at:
            return
        why = (
            f"unknown pre-existing processes: the log began only "
            f"{change.at - began:.0f} s before the change, so a {daemon} that was "
            f"idle since before the log began cannot be ruled out until "
            f"max_idle ({impact.max_idle:g} s) after the log began"
        )
    change.unseen.append(Unseen(service=impact.service, daemon=daemon, until=until, why=why))


def born_before(proc: Process, at: float) -> bool:
    """Whether ``proc`` may have started before ``at`` (a first log line in the same
    second counts: it may have been written up to a second after the process started)."""
    if proc.born_at is None:
        return True
    return proc.born_at < at if proc.born_exact else proc.born_at <= at


def adopt(state: EngineState, key: str) -> None:
    """A process first seen now may have started before pending changes: mark it stale."""
    proc = state.processes.get(key)
    if proc is None:
        return
    for change in state.changes.values():
        if change.status == "live" or key in change.stale:
            continue
        for impact in change.impacts:
            if not born_before(proc, routing_cache.horizon(change, impact)):
                continue
            if (
                impact.mode in STALE_MODES
                and matches(proc, impact)
                and (impact.mode != "table_check" or proc.session_open)
            ):
                change.stale.append(key)
                if impact.mode == "table_check":
                    change.until_session_end.append(key)
                if impact.mode == "table_check_10s":
                    check = TIMINGS["trivial_rewrite_table_check"][0]
                    change.stale_until[key] = change.at + check + state.resolution()
                break


def session_opened(state: EngineState, key: str, opened_at: float) -> None:
    """A session the log shows opened before a pending table change, folded after it (the
    log reached the engine later than the file watcher's report): its process keeps the
    old tables until that session ends, as if the line had been folded first."""
    proc = state.processes.get(key)
    if proc is None or not proc.session_open:
        return
    for change in state.changes.values():
        if change.status == "live" or key in change.stale or opened_at > change.at:
            continue
        for impact in change.impacts:
            if (
                impact.mode == "table_check"
                and matches(proc, impact)
                and born_before(proc, routing_cache.horizon(change, impact))
            ):
                change.stale.append(key)
                change.until_session_end.append(key)
                break


def reconsider(state: EngineState, key: str) -> None:
    """A process's birth became known: drop it from changes it turns out to postdate."""
    proc = state.processes.get(key)
    if proc is None:
        return
    for change in state.changes.values():
        if change.status == "live" or key not in change.stale or key in change.resolved:
            continue
        horizons = [routing_cache.horizon(change, i) for i in change.impacts if matches(proc, i)]
        if not born_before(proc, max(horizons, default=change.at)):
            change.stale.remove(key)
            change.stale_until.pop(key, None)
            if key in change.until_session_end:
                change.until_session_end.remove(key)


def _proxy_used(state: EngineState) -> bool:
    """Whether any parameter (other than the proxy_*_maps lists) names a proxy: table."""
    if state.facts is None:
        return False
    return any(
        "proxy:" in value
        for name, value in state.facts.parameters.items()
        if name not in ("proxy_read_maps", "proxy_write_maps")
    )


def proc_became_visible(state: EngineState) -> None:
    """With /proc visible, unseen processes are known: re-select the stale sets."""
    for change in state.changes.values():
        if change.status == "live":
            continue
        change.unseen = [
            replace(
                entry, resolved_at=change.at, why=f"{entry.why} (/proc now lists every process)"
            )
            if entry.resolved_at is None
            else entry
            for entry in change.unseen
        ]
        select_stale(state, change)


def argv_stale_until(state: EngineState, change: Change, reload: float, latest: float) -> None:
    """master.cf edits reach a service's processes only from the reload on: every process
    of an edited service that started before the reload is stale (master_conf.c:130-149).
    The reload came in [``reload``, ``latest``] (its log line is stamped to the second)."""
    for impact in change.impacts:
        if impact.via != ("master.cf",):
            continue
        # a process started before the end of the reload's second may predate it (qmgr
        # and pickup are restarted by the reload itself, so not for them)
        until = reload if impact.daemon in ALWAYS_RUNNING else latest
        for proc in state.processes.values():
            if matches(proc, impact) and born_before(proc, until) and proc.key not in change.stale:
                change.stale.append(proc.key)


def adopt_cache_holders(state: EngineState, change: Change, cutoff: float) -> bool:
    """The old trivial-rewrite is gone at ``cutoff``: every process that keeps its answers
    for life (smtpd) and started before then is stale; ones adopted meanwhile that started
    later are not. Returns whether the stale set grew."""
    grew = False
    window = change.routing_cache
    for impact in change.impacts:
        if not routing_cache.holds_lifetime_cache(impact):
            continue
        for proc in [*state.processes.values(), *state.history]:
            if not matches(proc, impact) or (proc.exited_at or change.at) < change.at:
                continue
            early = born_before(proc, cutoff)
            if early and window is not None and proc.key not in window.holders:
                window = replace(window, holders=(*window.holders, proc.key))
            if early and proc.key not in change.stale:
                change.stale.append(proc.key)
                grew = True
            elif (
                not early
                and proc.key in change.stale
                and proc.key not in change.resolved
                and not born_before(proc, change.at)
            ):
                change.stale.remove(proc.key)
    change.routing_cache = window
    return grew
