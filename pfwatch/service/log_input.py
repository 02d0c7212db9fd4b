"""The log side of ``pfwatch watch``: a follower (file or journald) plus the classifier.

Inputs: the maillog path or journald, the position committed last time (a follower
position dict or a journal cursor), a :class:`LogClassifier`. Outputs: per
:meth:`LogInput.poll` a :class:`LogBatch`: the LogEvents of the lines read, the position
to commit with their effects, and counts; :meth:`LogInput.status` for metrics and
/healthz. Errors: none raised while running; an unreadable, vanished or truncated log is
reported through ``status().error`` (the watch loop turns transitions into
``source_unavailable`` / ``source_recovered`` events) and following goes on.

A position that cannot be used (corrupt, or for another file) is dropped with a notice
and the follower starts at the end of the file, as on a first start (``start`` says
where a file without a position is read from: ``wait`` and ``lab`` read it whole).

:class:`LogWaker` watches the log's directory with inotify (watchdog) and calls a
function on every write, rename or creation of the log, so the loop reads a new line at
once instead of at its next poll; polling stays as the fallback (NFS, no inotify).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from pfwatch.errors import SourceUnavailable, StateError
from pfwatch.events import Finding, LogEvent
from pfwatch.maillog.classify import UNRECOGNIZED
from pfwatch.maillog.reader import LogClassifier
from pfwatch.service.log_trust import journal_verdict, postfix_uids, untrusted_finding
from pfwatch.sources.base import SourceStatus
from pfwatch.sources.follow import Follower
from pfwatch.sources.journald import JournalSource
from pfwatch.sources.position import FilePosition


@dataclass
class LogBatch:
    """What one poll of the log produced."""

    events: list[LogEvent] = field(default_factory=list)
    position: Any = None
    lines: int = 0
    unrecognized: int = 0
    more: bool = False
    untrusted: list[Finding] = field(default_factory=list)


class LogInput:
    """One log source (``maillog`` file or ``journal``) feeding the classifier."""

    def __init__(
        self,
        classifier: LogClassifier,
        *,
        maillog: Path | None,
        position: Any = None,
        journalctl: str = "journalctl",
        start: Literal["end", "beginning"] = "end",
    ) -> None:
        self.classifier = classifier
        self.maillog = maillog
        self.name = "maillog" if maillog is not None else "journal"
        self.key = f"file:{maillog}" if maillog is not None else "journal"
        self.notices: list[str] = []
        self._error: str | None = None
        self._last_at: float | None = None
        self._behind = False
        self._follower: Follower | None = None
        self._journal: JournalSource | None = None
        self._uids = postfix_uids()
        if maillog is not None:
            self._follower = Follower(maillog, self._file_position(position), start=start)
        else:
            cursor = position if isinstance(position, str) and position else None
            self._journal = JournalSource(journalctl=journalctl, cursor=cursor, start="end")

    def _file_position(self, position: Any) -> FilePosition | None:
        if position is None:
            return None
        try:
            found = FilePosition.from_dict(position)
        except StateError as exc:
            self.notices.append(f"{self.maillog}: stored position ignored: {exc}")
            return None
        if found.path != str(self.maillog):
            return None
        return found

    def poll(self, max_bytes: int = 4 * 1024 * 1024) -> LogBatch:
        """Read what is available now (about ``max_bytes`` at most) and classify it."""
        batch = LogBatch()
        if self._follower is not None:
            self._poll_file(self._follower, batch, max_bytes)
        elif self._journal is not None:
            self._poll_journal(self._journal, batch)
        if batch.events:
            self._last_at = batch.events[-1].at
        self._behind = batch.more
        return batch

    def drain(self) -> list[LogEvent]:
        """Every event readable now (``wait`` and ``lab`` poll this way)."""
        found: list[LogEvent] = []
        while True:
            batch = self.poll()
            found += batch.events
            if not batch.more and not batch.lines:
                return found

    def _poll_file(self, follower: Follower, batch: LogBatch, max_bytes: int) -> None:
        lines = follower.poll(max_bytes)
        self.notices += follower.notices()
        if not lines:
            return
        feed = self.classifier.feed
        source = self.name
        events = batch.events
        unrecognized = 0
        for line in lines:
            event = feed(line.data, source)
            if event is not None:
                events.append(event)
                if event.kind == UNRECOGNIZED:
                    unrecognized += 1
        batch.lines = len(lines)
        batch.unrecognized = unrecognized
        batch.more = follower.behind
        batch.position = lines[-1].position.to_dict()

    def _poll_journal(self, journal: JournalSource, batch: LogBatch) -> None:
        try:
            records = journal.poll()
        except SourceUnavailable as exc:
            self._error = str(exc)
            return
        self.notices += journal.notices()
        for record in records:
            event = self.classifier.feed_journal(record.fields, self.name, 0, record.cursor)
            if event is not None:
                verdict = journal_verdict(record.fields, event, self._uids)
                if verdict is not None:
                    batch.untrusted.append(untrusted_finding(event, *verdict))
                    continue
                batch.events.append(event)
                if event.kind == UNRECOGNIZED:
                    batch.unrecognized += 1
        batch.lines = len(records)
        if records:
            batch.position = journal.cursor
            self._error = None

    def check(self) -> str | None:
        """Why the source cannot be read now, or None when it can (cheap: one stat)."""
        if self.maillog is not None:
            try:
                info = self.maillog.stat()
            except OSError as exc:
                return f"{self.maillog}: {exc.strerror or exc}"
            if not stat.S_ISREG(info.st_mode):
                return f"{self.maillog}: not a regular file"
            if not os.access(self.maillog, os.R_OK):
                return f"{self.maillog}: permission denied"
            return None
        return self._error

    def status(self, error: str | None, now: float) -> SourceStatus:
        """Health and progress for metrics and /healthz."""
        lag_bytes: int | None = None
        if self._follower is not None and self.maillog is not None:
            position = self._follower.position
            try:
                size = self.maillog.stat().st_size
            except OSError:
                size = None
            if size is not None and position is not None and position.file == position.path:
                lag_bytes = max(0, size - position.offset)
        lag_seconds = 0.0
        if self._behind and self._last_at is not None:
            lag_seconds = max(0.0, now - self._last_at)
        return SourceStatus(
            up=error is None,
            lag_seconds=lag_seconds,
            lag_bytes=lag_bytes,
            last_line_at=self._last_at,
            error=error,
        )

    def take_notices(self) -> list[str]:
        """Problems met since the last call (sentences naming the file or command)."""
        found, self.notices = self.notices, []
        return found

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()
        if self._journal is not None:
            self._journal.close()


class LogWaker(FileSystemEventHandler):
    """Calls ``wake()`` whenever the log file is written, created, moved or deleted."""

    def __init__(self, path: Path, wake: Callable[[], None]) -> None:
        super().__init__()
        self.path = path.absolute()
        self._wake = wake
        self._observer: Any = None

    def start(self) -> LogWaker:
        """Start watching (no-op when the directory cannot be watched: polling remains)."""
        observer = Observer()
        try:
            observer.schedule(self, str(self.path.parent), recursive=False)
            observer.start()
        except OSError:
            return self
        self._observer = observer
        return self

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        target = str(self.path)
        if os.fsdecode(event.src_path) == target or (
            os.fsdecode(getattr(event, "dest_path", "") or "") == target
        ):
            self._wake()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
