"""A live session: keep the engine's picture current after a one-shot assessment.

``wait`` and ``lab`` start from :func:`pfwatch.changewindow.precheck.assess` (the watch
service's start-up, folded once) and then keep polling the very inputs it started: the
configuration tracker (:class:`~pfwatch.service.config_tracker.ConfigTracker`:
snapshots, diffs, edit times that count table sources and compiled files, change ids),
the log inputs (:class:`~pfwatch.service.log_input.LogInput`, a file follower or
journald) and the /proc poller (:class:`~pfwatch.sources.procfs.ProcScanner`). Each poll
sorts what they produced with the engine's one event order
(:func:`pfwatch.core.fold.fold_order`) and folds it with a ``Tick``, so "live" is
confirmed by observed exits (/proc, the log), not only predicted, exactly as ``watch``
confirms it.

Inputs: a :class:`~pfwatch.changewindow.precheck.CheckRequest`. Outputs: findings per
:meth:`LiveSession.poll`, the current :class:`~pfwatch.core.state.EngineState`. Errors:
those of ``assess`` at the start; none raised while polling: a configuration that stops
parsing is reported as a ``config_error`` finding and the last good snapshot stays in
force.
"""

from __future__ import annotations

import time

from pfwatch.changewindow.precheck import Assessment, CheckRequest, assess
from pfwatch.config.snapshot import Snapshot
from pfwatch.core.confirm import refresh_prediction
from pfwatch.core.fold import fold_order, step
from pfwatch.core.state import Change, EngineState
from pfwatch.events import ConfigError, Event, Finding, Tick
from pfwatch.service.startup import instance_of

CONFIG_EVERY = 1.0
"""Seconds between configuration snapshots while polling (watch uses inotify instead)."""


class LiveSession:
    """The engine kept current by polling; call :meth:`poll`, then :meth:`close`."""

    def __init__(self, request: CheckRequest, assessment: Assessment) -> None:
        self.request = request
        self.assessment = assessment
        self.state: EngineState = assessment.state
        self.tracker = assessment.tracker
        self.scanner = assessment.scanner
        self.inputs = assessment.inputs
        self._config_checked = 0.0

    @property
    def snapshot(self) -> Snapshot:
        """The configuration as last adopted by the tracker."""
        assert self.tracker.current is not None  # set by the assessment
        return self.tracker.current

    @classmethod
    def start(cls, request: CheckRequest) -> LiveSession:
        """Assess and keep following, with no log line lost or read twice in between."""
        return cls(request, assess(request, follow=True))

    def force_config_check(self) -> None:
        """Read the configuration at the next :meth:`poll` (after an edit we made)."""
        self._config_checked = 0.0

    def pending(self) -> list[Change]:
        """Changes not live yet, oldest first (superseded ones too, until live), each with
        its prediction as of the last poll."""
        found = sorted(
            (c for c in self.state.changes.values() if c.status != "live"),
            key=lambda c: c.at,
        )
        for change in found:
            refresh_prediction(self.state, change)
        return found

    def _config_events(self, now: float) -> list[Event]:
        if now - self._config_checked < CONFIG_EVERY:
            return []
        self._config_checked = now
        update = self.tracker.check(now)
        events: list[Event] = list(update.events)
        if update.problem is not None:
            events.append(ConfigError(now, str(self.request.config_dir), 0, 0, update.problem))
        if update.adopted is not None:
            self.scanner.configure(*instance_of(self.tracker))
        return events

    def poll(self, now: float | None = None) -> list[Finding]:
        """Read what happened since the last poll and fold it; return the findings."""
        at = time.time() if now is None else now
        events: list[Event] = []
        events += self.request.own(e for source in self.inputs for e in source.drain())
        events += self._config_events(at)
        table = self.scanner.poll(at)
        if table is not None:
            events.append(table)
        events.append(Tick(at))
        events.sort(key=fold_order)
        found: list[Finding] = []
        for event in events:
            found.extend(step(self.state, event))
        return found

    def close(self) -> None:
        for source in self.inputs:
            source.close()
