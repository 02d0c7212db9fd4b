"""A live session: keep the engine's picture current after a one-shot assessment.

``wait`` and ``lab`` start from :func:`pfwatch.changewindow.precheck.assess` and then poll: new log
lines (file follower or journald), the /proc process table of this configuration, and the
configuration itself (a new snapshot when a file changed, diffed into a
``ConfigChanged``). Each poll folds those events and a ``Tick`` through the engine, so
"live" is confirmed by observed exits (/proc, the log), not only predicted.

Inputs: a :class:`~pfwatch.changewindow.precheck.CheckRequest` and its
:class:`~pfwatch.changewindow.precheck.Assessment`. Outputs: findings per :meth:`LiveSession.poll`,
the current :class:`~pfwatch.core.state.EngineState`. Errors: ``SourceUnavailable`` when
journald cannot be read; a configuration that stops parsing is reported as a
``config_error`` finding and the last good snapshot stays in force.
"""

from __future__ import annotations

import time
from pathlib import Path

from pfwatch.changewindow.baseline import ProcessPicture, discover_processes
from pfwatch.changewindow.liveconfig import load_live_config
from pfwatch.changewindow.precheck import Assessment, CheckRequest, assess, log_classifier
from pfwatch.changewindow.whatif import changed_event
from pfwatch.config.diff import diff_snapshots
from pfwatch.config.snapshot import Snapshot, build_snapshot
from pfwatch.core.fold import step
from pfwatch.core.state import Change, EngineState
from pfwatch.errors import PfwatchError
from pfwatch.events import ConfigError, Event, Finding, LogEvent, ProcessTableSeen, Tick
from pfwatch.maillog.reader import LogClassifier
from pfwatch.sources.follow import Follower
from pfwatch.sources.journald import JournalSource

CONFIG_EVERY = 1.0
"""Seconds between configuration snapshots while watching."""


class LiveSession:
    """The engine kept current by polling; call :meth:`poll`, then :meth:`close`."""

    def __init__(
        self,
        request: CheckRequest,
        assessment: Assessment,
        *,
        followers: list[Follower] | None = None,
        classifier: LogClassifier | None = None,
    ) -> None:
        self.request = request
        self.assessment = assessment
        self.state: EngineState = assessment.state
        self.snapshot: Snapshot = assessment.snapshot
        self.picture: ProcessPicture = assessment.picture
        self.config = assessment.config
        self.classifier = classifier or log_classifier(self.config)
        if followers is None:
            followers = [Follower(path, start="end") for path in request.maillog]
        self.followers = followers
        self.journal = JournalSource(follow=True, start="end") if request.journal else None
        self._config_checked = 0.0
        self._edit_seq = 0

    @classmethod
    def start(cls, request: CheckRequest) -> LiveSession:
        """Assess and keep following, with no log line lost or read twice in between.

        The log files are read to their end through the same followers that are then
        polled, so a line written while the assessment runs is delivered exactly once.
        """
        if not request.maillog:
            return cls(request, assess(request))
        classifier = log_classifier(load_live_config(request.config_dir, request.postconf))
        followers = [Follower(path, start="beginning") for path in request.maillog]
        log: list[LogEvent] = []
        for follower in followers:
            while True:
                lines = follower.poll()
                for line in lines:
                    event = classifier.feed(line.data, line.file, position=line.checkpoint)
                    if event is not None:
                        log.append(event)
                if not lines and not follower.behind:
                    break
        log.sort(key=lambda e: e.at)
        return cls(request, assess(request, log), followers=followers, classifier=classifier)

    def force_config_check(self) -> None:
        """Read the configuration at the next :meth:`poll` (after an edit we made)."""
        self._config_checked = 0.0

    def pending(self) -> list[Change]:
        """Changes not live yet, oldest first (superseded ones too, until live)."""
        return sorted(
            (c for c in self.state.changes.values() if c.status != "live"),
            key=lambda c: c.at,
        )

    def _log_events(self) -> list[Event]:
        found: list[Event] = []
        for follower in self.followers:
            for line in follower.poll():
                event = self.classifier.feed(line.data, line.file, position=line.checkpoint)
                if event is not None:
                    found.append(event)
        if self.journal is not None:
            for record in self.journal.poll():
                event = self.classifier.feed_journal(record.fields)
                if event is not None:
                    found.append(event)
        return found

    def _config_events(self, now: float) -> list[Event]:
        if now - self._config_checked < CONFIG_EVERY:
            return []
        self._config_checked = now
        try:
            fresh = build_snapshot(str(self.config.config_dir), self.snapshot, taken_at=now)
        except PfwatchError as exc:
            return [ConfigError(now, str(self.config.config_dir), 0, 0, str(exc))]
        if fresh.digest == self.snapshot.digest:
            return []
        old, self.snapshot = self.snapshot, fresh
        problems = [p for p in fresh.problems if p.path in fresh.files]
        errors: list[Event] = [
            ConfigError(now, p.path, p.line, p.column, p.message) for p in problems
        ]
        diff = diff_snapshots(old, fresh)
        if diff.empty:
            return errors
        mtimes = []
        for path in diff.files:
            try:
                mtimes.append(Path(path).stat().st_mtime)
            except OSError:
                continue
        self._edit_seq += 1
        at = max(mtimes) if mtimes else now
        return [*errors, changed_event(old, fresh, min(at, now), f"edit-{self._edit_seq}")]

    def poll(self, now: float | None = None) -> list[Finding]:
        """Read what happened since the last poll and fold it; return the findings."""
        at = time.time() if now is None else now
        events = self._log_events() + self._config_events(at)
        events.sort(key=lambda e: e.at)
        self.picture = discover_processes(
            self.config.config_dir, self.config.queue_directory, self.config.instance_name, at
        )
        if self.picture.running:
            events.append(ProcessTableSeen(at, self.picture.children))
        events.append(Tick(at))
        found: list[Finding] = []
        for event in events:
            found.extend(step(self.state, event))
        return found

    def close(self) -> None:
        for follower in self.followers:
            follower.close()
        if self.journal is not None:
            self.journal.close()
