"""The run loop of ``pfwatch watch``: sources in, engine, outbox out, until told to stop.

Inputs: :class:`WatchOptions` (resolved settings plus service flags). Outputs: the event
stream (stdout, or ``--events-file``), the state database, /metrics /status /healthz,
sd_notify messages. Errors: :class:`pfwatch.errors.UsageError` when the listen address
cannot be bound or another watcher holds the state directory; everything that goes wrong
while running (config unreadable, log gone, state database full) becomes an event and
the loop goes on.

One thread owns the engine. Each cycle (at once when inotify reports a write to the log,
else every ``log_poll`` seconds; at once while the log has a backlog) it collects
events: a configuration snapshot when the directory watcher reported a burst, the new
log lines, a /proc table every ``proc_every`` seconds while this Postfix is visible
(``rescan`` seconds otherwise), and a ``Tick`` every ``tick_every`` seconds. It folds
them in time order and hands the findings of the whole cycle to the
:class:`~pfwatch.store.outbox.Outbox` together with the log position, the configuration
sequence and the engine state, in one transaction (docs/events.md §1.3). A cycle that
found nothing commits only when the position moved and ``idle_commit`` seconds passed,
so an idle watcher does not rewrite its state twice a second.
"""

from __future__ import annotations

import gc
import queue
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, TextIO, cast

from pfwatch import __version__
from pfwatch.config.instances import InstanceSpec, Router, discover, listed_directories
from pfwatch.core.fold import fold_order, step
from pfwatch.core.retention import forget_settled_changes
from pfwatch.core.state import EngineState
from pfwatch.errors import PfwatchError, StateError, UsageError, describe
from pfwatch.events import (
    Event,
    Finding,
    LogEvent,
    Tick,
)
from pfwatch.knowledge import releases
from pfwatch.service import events_file, startup
from pfwatch.service.clock import Clock, SystemClock
from pfwatch.service.config_tracker import ConfigUpdate
from pfwatch.service.instances import Pipeline, pipelines, stamped, state_with_others
from pfwatch.service.log_input import LogInput, LogWaker
from pfwatch.service.log_setup import Format, configure_logging, get_logger, redactor
from pfwatch.service.log_trust import proc_verdict, untrusted_finding
from pfwatch.service.sdnotify import notify, watchdog_interval
from pfwatch.service.state_doc import state_document
from pfwatch.service.status import (
    LastEvents,
    SourceHealth,
    instance_section,
    metrics_snapshot,
    status_document,
)
from pfwatch.settings import Settings
from pfwatch.sinks.base import FanOut, Sink
from pfwatch.sinks.events_json import EventsJsonSink
from pfwatch.sinks.http import HttpEndpoint, health_from, unprotected
from pfwatch.sinks.httpserver import Limits
from pfwatch.sinks.metrics import MetricsSnapshot, PfwatchMetrics
from pfwatch.sinks.webconfig import WebConfig
from pfwatch.sources.base import SourceStatus
from pfwatch.sources.files import DirectoryWatcher
from pfwatch.sources.procfs import ProcScanner
from pfwatch.store.outbox import Outbox, state_error_finding
from pfwatch.store.sqlite import StateStore

_CLAIMS = ("change_", "process_", "postfix_")
"""Findings about Postfix, stamped with ``evidence``."""


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """Everything ``pfwatch watch`` runs with."""

    settings: Settings
    proc: bool = True
    events_file: Path | None = None
    tick_every: float = 0.5
    proc_every: float = 1.0
    log_poll: float = 0.25
    idle_commit: float = 1.0
    read_bytes: int = 256 * 1024
    """Log bytes read per cycle at most: small batches keep peak memory (RSS) low."""
    health_every: float = 1.0
    journalctl: str = "journalctl"
    web_config: WebConfig | None = None
    """TLS and basic auth of the endpoint (``--web-config``), loaded before start-up."""
    http_limits: Limits = field(default_factory=Limits)
    keep_settled_changes: int = 32
    """Live or superseded changes kept in the engine state (the store keeps them all)."""
    instance_dirs: tuple[Path, ...] = ()
    """The other instances' configuration directories (``--config-dir`` repeated); empty:
    those the primary main.cf lists in ``multi_instance_directories``, if any."""


class WatchService:
    """``pfwatch watch``: build with options, :meth:`run` until :meth:`stop`."""

    def __init__(
        self, options: WatchOptions, *, out: TextIO | None = None, clock: Clock | None = None
    ) -> None:
        self.options = options
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.settings = options.settings
        self.out = out if out is not None else sys.stdout
        self.log = get_logger()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._config_dirty = threading.Event()
        self._primary_dirty = threading.Event()
        self._updates: queue.SimpleQueue[tuple[int, ConfigUpdate]] = queue.SimpleQueue()
        self._lock = threading.RLock()
        self._health = SourceHealth()
        self._last_events = LastEvents()
        self._deferred: list[Finding] = []
        self._position: Any = None  # log position of the last folded line
        self._config_position: Any = None  # config sequence of the last folded update
        self._config_problem: str | None = None
        self._last_commit = 0.0
        self._unsaved = False  # the position moved but was not committed yet
        self._next_tick = self._next_proc = self._next_health = 0.0
        self.state = EngineState()
        self.store: StateStore | None = None
        self.http: HttpEndpoint | None = None
        self.address: tuple[str, int] | None = None
        self._release = releases.startup_summary()
        self._others: list[Pipeline] = []
        """The other instances of a multi-instance host (none: one instance)."""
        self._router: Router | None = None
        self._instances: tuple[InstanceSpec, ...] = ()

    # -- public -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its cycle, commit and return (thread- and signal-safe)."""
        self._stop.set()
        self._wake.set()

    def reread(self) -> None:
        """Look at the configuration again now (SIGHUP)."""
        self._primary_dirty.set()
        for other in self._others:
            other.dirty.set()
        self._config_dirty.set()
        self._wake.set()

    def run(self) -> int:
        """Start everything, loop until stopped, shut down cleanly. Returns 0."""
        fmt = cast(Format, self.settings.log_format)  # settings.py accepts LOG_FORMATS only
        renderer = configure_logging(stream=self.out, fmt=fmt)
        self.store, findings = startup.open_store(self.settings.state_dir, self.log)
        events_stream: TextIO | None = None
        try:
            if self.options.events_file is not None:
                sink, events_stream = events_file.open_events_file(self.options.events_file)
                if self.store is not None:
                    found = events_file.reconcile(self.options.events_file, self.store)
                    if found:
                        self.log.info(
                            "events_file_reconciled",
                            path=str(self.options.events_file),
                            already_written=found,
                        )
            else:
                sink = EventsJsonSink(self.out, render=renderer, redact=redactor.redact)
            self._serve(sink, findings)
        finally:
            self._shutdown(events_stream)
        return 0

    def _serve(self, sink: Sink, findings: list[Finding]) -> None:
        self.metrics = PfwatchMetrics(self._metrics_snapshot)
        self.outbox = Outbox(
            self.store,
            FanOut([sink, self.metrics, self._last_events]),
            on_state_problem=self._state_problem,
            on_state_recovered=lambda: self.log.warning("state_recovered"),
        )
        replayed = self.outbox.replay_pending()
        if replayed:
            self.log.info("events_replayed", count=replayed)
        restored = startup.restore(self.store, self.settings.config_dir, self.log)
        self.state, self.tracker = restored.state, restored.tracker
        tracker, positions = restored.tracker, restored.positions
        self._follow_instances(positions)
        self.classifier = startup.classifier_for(tracker, [p.tracker for p in self._others])
        self.source = LogInput(
            self.classifier,
            maillog=self.settings.maillog,
            position=positions.get(
                f"file:{self.settings.maillog}" if self.settings.maillog else "journal"
            ),
            journalctl=self.options.journalctl,
        )
        self.scanner = (
            startup.scanner_for(tracker, self.settings.config_dir) if self.options.proc else None
        )
        self._start_http()
        self.watcher = DirectoryWatcher(
            self._directories(),
            self._on_files,
            quiet=self.settings.debounce,
            on_problem=self._on_watch_problem,
        ).start()
        waker = None
        if self.settings.maillog is not None:
            waker = LogWaker(self.settings.maillog, self._wake.set).start()
        try:
            self._install_signals()
            self._first_cycle(findings)
            # what start-up built (modules, grammars, knowledge tables) lives as long as
            # the service: keep the cyclic collector from rescanning it on every full
            # collection, whose pauses otherwise land on the latency of edits
            gc.collect()
            gc.freeze()
            notify("READY=1")
            notify(f"STATUS=watching {self.settings.config_dir}")
            self._loop()
            notify("STOPPING=1")
        finally:
            self.watcher.stop()
            if waker is not None:
                waker.stop()

    # -- start-up -----------------------------------------------------------------------

    def _start_http(self) -> None:
        self.http = HttpEndpoint(
            self.metrics.registry,
            self._status,
            lambda: health_from(self._metrics_snapshot()),
            host=self.settings.listen_host,
            port=self.settings.listen_port,
            web_config=self.options.web_config,
            limits=self.options.http_limits,
        ).start()
        self.address = self.http.address
        why = unprotected(self.settings.listen_host, self.options.web_config)
        if why is not None:
            self.log.warning("listen_unprotected", listen=self.settings.listen, message=why)

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_stop(_signum: int, _frame: FrameType | None) -> None:
            self.stop()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.reread()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _first_cycle(self, findings: list[Finding]) -> None:
        now = self.clock.now()
        host, port = self.address or (self.settings.listen_host, self.settings.listen_port)
        findings.insert(
            0,
            Finding(
                "watch_started",
                now,
                "observed",
                {
                    "version": __version__,
                    "config_dir": str(self.settings.config_dir),
                    "maillog": str(self.settings.maillog) if self.settings.maillog else None,
                    "journal": self.settings.journal,
                    "state_dir": str(self.settings.state_dir),
                    "listen": f"{host}:{port}",
                    "postfix_release": self._release,
                    **self._instances_field(),
                },
            ),
        )
        updates = [(0, self.tracker.check(now))]
        updates += [(n, p.tracker.check(now)) for n, p in enumerate(self._others, start=1)]
        self._cycle(now, updates, findings, force_commit=True)

    # -- the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        opts = self.options
        watchdog = watchdog_interval()
        next_watchdog = time.monotonic()
        # inotify wakes the loop for a log file; journalctl's pipe is polled more often
        poll = opts.log_poll if self.settings.maillog is not None else min(opts.log_poll, 0.05)
        worker = threading.Thread(target=self._config_worker, name="pfwatch-config")
        worker.start()
        try:
            while not self._stop.is_set():
                now = self.clock.now()
                updates: list[tuple[int, ConfigUpdate]] = []
                while not self._updates.empty():
                    updates.append(self._updates.get())
                more = self._cycle(now, updates, [])
                if watchdog is not None and time.monotonic() >= next_watchdog:
                    notify("WATCHDOG=1")
                    next_watchdog = time.monotonic() + watchdog
                if not more:
                    self._wake.wait(poll)
                    self._wake.clear()
        finally:
            self._config_dirty.set()
            worker.join(timeout=30)
            leftover: list[tuple[int, ConfigUpdate]] = []
            while not self._updates.empty():
                leftover.append(self._updates.get())
            if leftover:
                self._cycle(self.clock.now(), leftover, [])

    def _config_worker(self) -> None:
        """Snapshots off the engine's thread: a snapshot can take a second, log lines
        should not wait for it. Updates reach the loop through a queue, in order."""
        while not self._stop.is_set():
            if not self._config_dirty.wait(0.5):
                continue
            self._config_dirty.clear()
            if self._stop.is_set():
                return
            if self._primary_dirty.is_set():
                self._primary_dirty.clear()
                update = self.tracker.check(self.clock.now())
                update.stored()  # serialise here, not on the engine's thread
                self._updates.put((0, update))
                self._wake.set()
            for number, other in enumerate(self._others, start=1):
                if other.dirty.is_set():
                    other.dirty.clear()
                    self._updates.put((number, other.tracker.check(self.clock.now())))
                    self._wake.set()

    def _cycle(
        self,
        now: float,
        updates: list[tuple[int, ConfigUpdate]],
        findings: list[Finding],
        *,
        force_commit: bool = False,
    ) -> bool:
        """One cycle; returns True when the log has more input waiting."""
        events: list[Event] = []
        others: list[list[Event]] = [[] for _ in self._others]
        snapshot_row = None
        if self._deferred:
            findings[:0], self._deferred = self._deferred, []
        for number, update in updates:
            if number:
                self._other_update(number - 1, update, others[number - 1], now)
                continue
            events += update.events
            self._config_problem = update.problem
            self._next_health = now  # report a changed config source state now
            self._config_position = update.position
            if update.adopted is not None:
                snapshot_row = update.stored()
                self._config_adopted()
        batch = self.source.poll(self.options.read_bytes)
        findings += batch.untrusted
        lines = batch.events
        if self._router is not None and lines:
            lines = self._route(lines, others, findings)
        scanner = self.scanner
        if scanner is not None and scanner.visible and lines:
            events += self._vouched(scanner, lines, findings, self.state)
        else:
            events += lines
        for notice in self.source.take_notices():
            self.log.warning("log_notice", source=self.source.name, message=notice)
        tick_due, health_due = now >= self._next_tick, now >= self._next_health
        self._poll_periodic(now, events, findings)
        if self._others:
            self._poll_others(now, others, findings, tick=tick_due, health=health_due)
        events.sort(key=fold_order)
        with self._lock:
            if self._others:
                self._fold_instances(events, others, findings)
            else:
                for event in events:
                    findings.extend(step(self.state, event))
            if len(self.state.changes) > self.options.keep_settled_changes:
                forget_settled_changes(self.state, self.options.keep_settled_changes)
            moved = batch.position is not None
            if moved:
                self._position = batch.position
            if findings:
                findings[:] = self._with_evidence(findings)
            due = now - self._last_commit >= self.options.idle_commit
            if findings or snapshot_row or force_commit or ((self._unsaved or moved) and due):
                self.outbox.deliver(
                    findings, self._positions(), self._state_document(), snapshot=snapshot_row
                )
                self._last_commit = now
                self._unsaved = False
            elif moved:
                self._unsaved = True
        if batch.lines:
            self.metrics.count_log_lines(self.source.name, batch.lines, batch.unrecognized)
        return batch.more

    def _positions(self) -> dict[str, Any]:
        positions: dict[str, Any] = {"config": self._config_position}
        for other in self._others:
            if other.config_position is not None:
                positions[other.position_key()] = other.config_position
        if self._position is not None:
            positions[self.source.key] = self._position
        return positions

    def _state_document(self) -> dict[str, Any]:
        if self._others:
            return state_with_others(self.state, self._others)
        return state_document(self.state)

    # -- the other instances of a multi-instance host -----------------------------------

    def _follow_instances(self, positions: Mapping[str, Any]) -> None:
        """On a multi-instance host, a pipeline per other instance (see
        :mod:`pfwatch.service.instances`)."""
        primary, given = self.settings.config_dir, self.options.instance_dirs
        try:
            if not given and not listed_directories(primary):
                return
            found = discover(primary, given)
        except PfwatchError as exc:
            if given:
                raise UsageError(describe(exc)) from exc
            self.log.warning("instances_unreadable", config_dir=str(primary), error=str(exc))
            return
        if len(found) < 2:
            return
        stored: Any = None
        if self.store is not None:
            try:
                stored = self.store.engine_state()
            except StateError as exc:
                self.log.warning("state_not_restored", error=str(exc))
        self._instances, self._router = found, Router(found)
        self._others = pipelines(found[1:], stored, proc=self.options.proc, log=self.log)
        for other in self._others:
            other.config_position = positions.get(other.position_key())

    def _instances_field(self) -> dict[str, Any]:
        if not self._others:
            return {}
        return {
            "instances": [
                {"instance": spec.name, "config_dir": str(spec.config_dir)}
                for spec in self._instances
            ]
        }

    def _directories(self) -> list[str]:
        found = set(self.tracker.directories())
        for other in self._others:
            found |= other.tracker.directories()
        return sorted(found)

    def _other_update(
        self, index: int, update: ConfigUpdate, events: list[Event], now: float
    ) -> None:
        other = self._others[index]
        events += update.events
        other.config_problem = update.problem
        other.config_position = update.position
        self._next_health = now
        if update.adopted is not None:
            other.adopted()
            self.watcher.set_directories(self._directories())

    def _route(
        self, lines: list[LogEvent], others: list[list[Event]], findings: list[Finding]
    ) -> list[LogEvent]:
        """The primary's lines; the others' go to their pipelines, checked against their
        own /proc; a line of no followed instance is dropped."""
        assert self._router is not None
        route = self._router.route
        mine: list[LogEvent] = []
        theirs: list[list[LogEvent]] = [[] for _ in self._others]
        for ev in lines:
            number = route(ev)
            if number == 0:
                mine.append(ev)
            elif number is not None:
                theirs[number - 1].append(ev)
        for other, got, queued in zip(self._others, theirs, others, strict=True):
            if not got:
                continue
            scanner = other.scanner
            if scanner is not None and scanner.visible:
                queued.extend(self._vouched(scanner, got, findings, other.state))
            else:
                queued.extend(got)
        return mine

    def _poll_others(
        self,
        now: float,
        others: list[list[Event]],
        findings: list[Finding],
        *,
        tick: bool,
        health: bool,
    ) -> None:
        opts = self.options
        for other, events in zip(self._others, others, strict=True):
            scanner = other.scanner
            if scanner is not None and now >= other.next_proc:
                table = scanner.poll(now)
                if table is not None:
                    events.append(table)
                visible = scanner.visible
                other.next_proc = now + (opts.proc_every if visible else scanner.rescan)
                how = None if visible else scanner.how
                self._health.statuses[f"proc:{other.name}"] = SourceStatus(up=True, error=how)
            if tick:
                events.append(Tick(now))
            if health:
                why = other.config_problem
                if why is None and other.tracker.current is None:
                    why = f"{other.spec.config_dir}: no configuration read yet"
                self._source_state(f"config:{other.name}", why, now, findings)

    def _fold_instances(
        self, events: list[Event], others: list[list[Event]], findings: list[Finding]
    ) -> None:
        """Fold each instance's events into its own state; findings name their instance."""
        own: list[Finding] = []
        for event in events:
            own.extend(step(self.state, event))
        findings.extend(stamped(own, self._instances[0].name))
        keep = self.options.keep_settled_changes
        for other, queued in zip(self._others, others, strict=True):
            queued.sort(key=fold_order)
            found: list[Finding] = []
            for event in queued:
                found.extend(step(other.state, event))
            if len(other.state.changes) > keep:
                forget_settled_changes(other.state, keep)
            if found:
                findings.extend(self._with_evidence(stamped(found, other.name), other.scanner))

    def _vouched(
        self,
        scanner: ProcScanner,
        lines: list[LogEvent],
        findings: list[Finding],
        state: EngineState,
    ) -> list[LogEvent]:
        """The lines /proc does not contradict; the others become findings."""
        slack = state.resolution() + 1.0
        kept: list[LogEvent] = []
        for ev in lines:
            verdict = proc_verdict(ev, scanner, slack)
            if verdict is None:
                kept.append(ev)
            else:
                findings.append(untrusted_finding(ev, *verdict))
        return kept

    def _with_evidence(
        self, findings: list[Finding], scanner: ProcScanner | bool | None = False
    ) -> list[Finding]:
        """Stamp claims about Postfix with what backs them (docs/events.md 1.1); the
        scanner of their instance (default: the primary's)."""
        if scanner is False:
            scanner = self.scanner
        proc = isinstance(scanner, ProcScanner) and scanner.visible
        log = "journal" if self.settings.journal else "log"
        evidence = f"{log}+proc" if proc else ("journal" if self.settings.journal else "log only")
        return [
            replace(f, data={**f.data, "evidence": evidence})
            if f.name.startswith(_CLAIMS) and "evidence" not in f.data
            else f
            for f in findings
        ]

    def _poll_periodic(self, now: float, events: list[Event], findings: list[Finding]) -> None:
        opts = self.options
        if self.scanner is not None and now >= self._next_proc:
            table = self.scanner.poll(now)
            if table is not None:
                events.append(table)
            visible = self.scanner.visible
            self._next_proc = now + (opts.proc_every if visible else self.scanner.rescan)
            how = None if visible else self.scanner.how
            self._health.statuses["proc"] = SourceStatus(up=True, error=how)
        if now >= self._next_tick:
            events.append(Tick(now))
            self._next_tick = now + opts.tick_every
        if now >= self._next_health:
            self._next_health = now + opts.health_every
            self._source_state(self.source.name, self.source.check(), now, findings)
            missing = sorted(self.watcher.missing)
            why = self._config_problem
            if why is None and missing:
                why = f"cannot watch {', '.join(missing)}"
            if why is None and self.tracker.current is None:
                why = f"{self.settings.config_dir}: no configuration read yet"
            self._source_state("config", why, now, findings)

    def _source_state(
        self, name: str, error: str | None, now: float, findings: list[Finding]
    ) -> None:
        status = self.source.status(error, now) if name == self.source.name else None
        findings += self._health.update(name, error, now, status)

    def _config_adopted(self) -> None:
        self.watcher.set_directories(self._directories())
        if self.scanner is not None:
            self.scanner.configure(*startup.instance_of(self.tracker))

    # -- callbacks from other threads ---------------------------------------------------

    def _on_files(self, paths: frozenset[str]) -> None:
        concerned = False
        if self.tracker.concerns(paths):
            self._primary_dirty.set()
            concerned = True
        for other in self._others:
            if other.tracker.concerns(paths):
                other.dirty.set()
                concerned = True
        if concerned:
            self._config_dirty.set()
            self._wake.set()

    def _on_watch_problem(self, directory: str, message: str) -> None:
        self.log.warning("watch_problem", directory=directory, message=message)

    def _state_problem(self, exc: StateError) -> None:
        """The outbox cannot commit: report it with the next batch (written from memory)."""
        self.log.error("state_unwritable", error=str(exc))
        path = str(self.store.path) if self.store is not None else str(self.settings.state_dir)
        self._deferred.append(state_error_finding(exc, self.clock.now(), path))

    def _metrics_snapshot(self) -> MetricsSnapshot:
        with self._lock:
            current = self.tracker.current
            snap = metrics_snapshot(
                self.state,
                now=self.clock.now(),
                digest=current.digest if current is not None else None,
                sources=dict(self._health.statuses),
                state_ok=self.outbox.state_ok,
            )
            if not self._others:
                return snap
            parts = [(self._instances[0].name, snap)]
            for other in self._others:
                theirs = other.tracker.current
                parts.append(
                    (
                        other.name,
                        metrics_snapshot(
                            other.state,
                            now=snap.now,
                            digest=theirs.digest if theirs is not None else None,
                            sources={},
                            state_ok=snap.state_ok,
                        ),
                    )
                )
            return MetricsSnapshot(
                now=snap.now, sources=snap.sources, state_ok=snap.state_ok, instances=tuple(parts)
            )

    def _status(self) -> Mapping[str, Any]:
        with self._lock:
            current = self.tracker.current
            return status_document(
                self.state,
                now=self.clock.now(),
                digest=current.digest if current is not None else None,
                sources=dict(self._health.statuses),
                state_ok=self.outbox.state_ok,
                last_events=list(self._last_events.records),
                watch={
                    "version": __version__,
                    "config_dir": str(self.settings.config_dir),
                    "maillog": str(self.settings.maillog) if self.settings.maillog else None,
                    "state_dir": str(self.settings.state_dir),
                    "postfix_release": self._release_now(),
                    **self._instances_field(),
                },
                instances=self._instance_sections(),
            )

    def _release_now(self) -> dict[str, Any]:
        """The release of /status: the last master start the log showed (the engine keeps
        its version), else what start-up knew (postconf, PFWATCH_POSTFIX_VERSION)."""
        logged = [m for m in self.state.master.values() if m.version]
        if not logged:
            return self._release
        latest = max(logged, key=lambda m: m.started_at)
        track = releases.ReleaseTrack()
        track.observe(latest.version, latest.started_at)
        at_start = self._release
        return track.summary(
            postconf=at_start["version"] if at_start["source"] == "postconf" else None,
            configured=at_start["version"] if at_start["source"] == "configured" else None,
        )

    def _instance_sections(self) -> list[dict[str, Any]] | None:
        """/status of a multi-instance host: each instance's pending changes and processes."""
        if not self._others:
            return None
        pipes = [(self._instances[0], self.state, self.tracker)]
        pipes += [(o.spec, o.state, o.tracker) for o in self._others]
        return [
            instance_section(
                state,
                name=spec.name,
                config_dir=str(spec.config_dir),
                digest=tracker.current.digest if tracker.current is not None else None,
            )
            for spec, state, tracker in pipes
        ]

    # -- shutdown -----------------------------------------------------------------------

    def _shutdown(self, events_stream: TextIO | None) -> None:
        try:
            if hasattr(self, "outbox") and hasattr(self, "tracker"):
                with self._lock:
                    self.outbox.deliver([], self._positions(), self._state_document())
        finally:
            if self.http is not None:
                self.http.close()
            if hasattr(self, "source"):
                self.source.close()
            if self.store is not None:
                self.store.close()
            if events_stream is not None:
                events_stream.close()


def run_watch(options: WatchOptions, out: TextIO | None = None) -> int:
    """Run the service in this thread until SIGTERM/SIGINT; returns the exit status."""
    return WatchService(options, out=out).run()
