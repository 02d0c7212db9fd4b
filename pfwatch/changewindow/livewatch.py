"""A live session: keep the engine's picture current after a one-shot assessment.

``wait`` and ``lab`` start from :func:`pfwatch.changewindow.precheck.assess` and then
run the watch service's own inputs in-process: its configuration tracker
(:class:`~pfwatch.service.config_tracker.ConfigTracker`: snapshots, diffs, edit times
that count table sources and compiled files, change ids), its log input
(:class:`~pfwatch.service.log_input.LogInput`, a file follower or journald) and its
/proc poller (:class:`~pfwatch.sources.procfs.ProcScanner`). Each poll sorts what they
produced with the engine's one event order (:func:`pfwatch.core.fold.fold_order`) and
folds it with a ``Tick``, so "live" is confirmed by observed exits (/proc, the log), not
only predicted, exactly as ``watch`` confirms it.

Inputs: a :class:`~pfwatch.changewindow.precheck.CheckRequest` and its
:class:`~pfwatch.changewindow.precheck.Assessment`. Outputs: findings per
:meth:`LiveSession.poll`, the current :class:`~pfwatch.core.state.EngineState`. Errors:
none raised while polling; a configuration that stops parsing is reported as a
``config_error`` finding and the last good snapshot stays in force.
"""

from __future__ import annotations

import time
from pathlib import Path

from pfwatch.changewindow.liveconfig import load_live_config
from pfwatch.changewindow.precheck import Assessment, CheckRequest, assess, log_classifier
from pfwatch.config.snapshot import Snapshot
from pfwatch.core.fold import fold_order, step
from pfwatch.core.state import Change, EngineState
from pfwatch.events import ConfigError, Event, Finding, LogEvent, Tick
from pfwatch.maillog.reader import LogClassifier
from pfwatch.service.config_tracker import ConfigTracker
from pfwatch.service.log_input import LogInput
from pfwatch.service.startup import instance_of
from pfwatch.sources.procfs import ProcScanner

CONFIG_EVERY = 1.0
"""Seconds between configuration snapshots while polling (watch uses inotify instead)."""


def _drain(source: LogInput) -> list[LogEvent]:
    """Everything the log input can read now."""
    found: list[LogEvent] = []
    while True:
        batch = source.poll()
        found += batch.events
        if not batch.more and not batch.lines:
            return found


class LiveSession:
    """The engine kept current by polling; call :meth:`poll`, then :meth:`close`."""

    def __init__(
        self,
        request: CheckRequest,
        assessment: Assessment,
        *,
        inputs: list[LogInput] | None = None,
        classifier: LogClassifier | None = None,
    ) -> None:
        self.request = request
        self.assessment = assessment
        self.state: EngineState = assessment.state
        self.config = assessment.config
        self.tracker = ConfigTracker(request.config_dir, assessment.snapshot)
        queue_dir, instance = instance_of(self.tracker)
        self.scanner = ProcScanner(queue_dir, request.config_dir, instance)
        if inputs is None:
            classifier = classifier or log_classifier(self.config)
            inputs = [LogInput(classifier, maillog=Path(path)) for path in request.maillog]
            if request.journal:
                inputs.append(LogInput(classifier, maillog=None))
        self.inputs = inputs
        self._config_checked = 0.0

    @property
    def snapshot(self) -> Snapshot:
        """The configuration as last adopted by the tracker."""
        assert self.tracker.current is not None  # set from the assessment
        return self.tracker.current

    @classmethod
    def start(cls, request: CheckRequest) -> LiveSession:
        """Assess and keep following, with no log line lost or read twice in between.

        The log files are read whole through the same inputs that are then polled, so a
        line written while the assessment runs is delivered exactly once.
        """
        if not request.maillog:
            return cls(request, assess(request))
        classifier = log_classifier(load_live_config(request.config_dir, request.postconf))
        inputs = [
            LogInput(classifier, maillog=Path(path), start="beginning") for path in request.maillog
        ]
        log = [event for source in inputs for event in _drain(source)]
        log.sort(key=fold_order)
        return cls(request, assess(request, log), inputs=inputs)

    def force_config_check(self) -> None:
        """Read the configuration at the next :meth:`poll` (after an edit we made)."""
        self._config_checked = 0.0

    def pending(self) -> list[Change]:
        """Changes not live yet, oldest first (superseded ones too, until live)."""
        return sorted(
            (c for c in self.state.changes.values() if c.status != "live"),
            key=lambda c: c.at,
        )

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
        events: list[Event] = [e for source in self.inputs for e in _drain(source)]
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
