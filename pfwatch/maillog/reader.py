"""Read maillog lines into :class:`~pfwatch.events.LogEvent` objects, with statistics.

:class:`LogClassifier` turns one line (bytes or str) or one journald JSON record into a
LogEvent (``None`` for lines of other programs and for lines without a recognizable
envelope) and keeps :class:`LineStats`. :func:`iter_log_events` replays files (plain or
gzip), ``-`` for stdin and directories of rotated files, oldest first, a block of lines at
a time. Inputs: lines, records, paths. Outputs: LogEvents and statistics. Errors: bad
lines are counted, never raised; an unreadable path raises
:class:`~pfwatch.errors.SourceUnavailable`; a file that breaks off mid-way (corrupt gzip,
I/O error) is recorded in ``LineStats.read_errors``. Memory is bounded: no per-line
retention, capped samples, shape counters and caches.
"""

from __future__ import annotations

import contextlib
import gc
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import tzinfo
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol

from pfwatch.events import LogEvent
from pfwatch.maillog.classify import ACTIVITY_KIND, ACTIVITY_PATTERN, UNRECOGNIZED, Classifier
from pfwatch.maillog.construct import make_log_event
from pfwatch.maillog.envelope import (
    Envelope,
    TimestampParser,
    activity_block_regex,
    fast_syslog_regex,
    journal_envelope,
    parse_envelope,
)
from pfwatch.maillog.program import ProgramDecomposer, ProgramName
from pfwatch.maillog.seek import OUT_OF_ORDER_SLACK, lines_before, start_offset
from pfwatch.maillog.stats import SHAPES_LIMIT, LineStats, shape_of
from pfwatch.sources.replay import ReplaySource

__all__ = [
    "MAX_LINE_BYTES",
    "SHAPES_LIMIT",
    "LineStats",
    "LogClassifier",
    "iter_log_events",
    "make_log_event",
    "shape_of",
]

FAST_SYSLOG = fast_syslog_regex(ACTIVITY_PATTERN)
"""Classic syslog lines in one match: stamp, host, tag, pid, queue id (if any), message."""
MAX_LINE_BYTES = 64 * 1024
"""Longer lines are cut here (counted in ``lines_truncated``); the rest is skipped."""
MAX_READ_ERRORS = 20
MASTER_PROGRAMS = frozenset({"master", "postfix-script"})
"""Their lines (start, reload, stop, child exits) change what every process' next line means."""
NOT_POSTFIX = ProgramName("", "", "", "")
"""Cached in place of the decomposition of another program's tag."""
_CACHE_LIMIT = 4096
_PROCESS_WINDOW = 65536
ACTIVITY_BLOCK = activity_block_regex(ACTIVITY_PATTERN, MAX_LINE_BYTES - 1024)
"""Replay blocks (``findall``): queue-id lines of classic syslog (inlined), other classic
lines (the fast body) and every other line (:attr:`feed`), see activity_block_regex."""


class LineFeeder(Protocol):
    """The signature of :attr:`LogClassifier.feed`."""

    def __call__(
        self, line: bytes | str, source: str = "", line_no: int = 0, position: str = ""
    ) -> LogEvent | None:
        """Classify one line."""


class _FastBody(Protocol):
    def __call__(  # noqa: PLR0917 - positional on purpose: the replay hot path
        self, stamp: str, host: str, tag: str, pid_text: str | None, queue_id: str | None,
        message: str, source: str, line_no: int, position: str,
    ) -> LogEvent | None: ...  # fmt: skip


class LineCounters:
    """The reader's hot-path counters, named (slot attributes cost less than list items)."""

    __slots__ = (
        "last",
        "latest",
        "lines_time_backwards",
        "lines_total",
        "lines_unrecognized",
    )

    def __init__(self) -> None:
        self.lines_total = 0
        self.lines_unrecognized = 0
        self.lines_time_backwards = 0
        self.last = -1e300  # time of the previous line: an earlier stamp counts backwards
        self.latest = -1e300  # the latest time seen so far


class LogClassifier:
    """Stateful line classifier: envelope, program name, catalogue kind, statistics.

    ``reference_time`` fixes the year of syslog dates (default: now, or each file's
    modification time in :func:`iter_log_events`); ``syslog_services`` maps syslog names
    from master.cf ``-o syslog_name=...`` to service names; ``keep_unrecognized`` is how
    many unrecognized lines to keep verbatim in ``stats.unrecognized_samples``; ``tz`` is
    the zone of timestamps without an offset (default: local). With ``coalesce_activity``
    a ``message_activity`` line is counted but yields no event when the previous line of
    the same process was a ``message_activity`` line with the same timestamp and queue id
    (a second recipient line, ``from=`` then ``removed`` in one second), no line since was
    later and no master or postfix-script line came in between: such a line cannot change
    what the engine concludes (same time, same message, no session, use or lifecycle
    boundary in between), so the coalesced stream folds to the same findings.
    """

    def __init__(
        self,
        reference_time: float | None = None,
        syslog_services: Mapping[str, str] | None = None,
        keep_unrecognized: int = 0,
        *,
        tz: tzinfo | None = None,
        coalesce_activity: bool = False,
    ) -> None:
        self._stats = LineStats()
        self.reference_fixed = reference_time is not None
        self._stamps = TimestampParser(reference_time, tz)
        self._programs = ProgramDecomposer(syslog_services)
        self._classify = Classifier().classify
        self._keep = keep_unrecognized
        self._coalesce = coalesce_activity
        self._stamp_cache: dict[str, float] = {}
        # hot-path counters, folded into ``stats`` on access (:class:`LineCounters`);
        # Postfix lines per program; classified (not fast-path activity) lines per
        # (program, kind); processes seen recently: (program, pid text) -> [time of their
        # last line, its queue id or ""], and their count per program
        self._counts = LineCounters()
        self._lines_per_program: dict[str, int] = {}
        self._per_program_kind: dict[tuple[str, str], int] = {}
        self._processes: dict[tuple[str, str], list[Any]] = {}
        self._process_counts: dict[str, int] = {}
        self._program_cache: dict[str, ProgramName] = {}
        self._fast_body = self._make_fast_body()
        self.feed: LineFeeder = self._make_feed()
        """Classify one line; None for malformed lines and other programs' lines."""

    @property
    def stats(self) -> LineStats:
        """Statistics so far (hot-path counters folded in)."""
        stats = self._stats
        counts = self._counts
        postfix = sum(self._lines_per_program.values())
        stats.lines_total = counts.lines_total
        stats.lines_postfix = postfix
        stats.lines_unrecognized = counts.lines_unrecognized
        stats.lines_recognized = postfix - counts.lines_unrecognized
        stats.lines_time_backwards = counts.lines_time_backwards
        stats.per_daemon = _by_daemon(self._lines_per_program)
        stats.processes_per_daemon = _by_daemon(self._process_counts)
        per_kind: dict[str, int] = {}
        for (_, kind), count in self._per_program_kind.items():
            per_kind[kind] = per_kind.get(kind, 0) + count
        fast_activity = postfix - sum(self._per_program_kind.values())
        if fast_activity:
            per_kind[ACTIVITY_KIND] = per_kind.get(ACTIVITY_KIND, 0) + fast_activity
        stats.per_kind = per_kind
        return stats

    @property
    def reference_time(self) -> float:
        """The moment syslog dates are read relative to (decides their year)."""
        return self._stamps.reference_time

    @reference_time.setter
    def reference_time(self, value: float) -> None:
        self._stamps.reference_time = value
        self._stamp_cache.clear()

    def _make_fast_body(self) -> _FastBody:
        """The work after a classic-syslog match, shared by :attr:`feed` and blocks."""
        stamp_cache = self._stamp_cache
        stamp_of = self._stamp_of
        program_cache = self._program_cache
        program_of = self._program
        classify = self._classify
        counts = self._counts
        lines_per_program = self._lines_per_program
        per_program_kind = self._per_program_kind
        processes = self._processes
        process_counts = self._process_counts
        finish = self._finish
        slow = self._slow_line
        forget = self._forget_activity
        make = make_log_event
        activity = ACTIVITY_KIND
        coalesce = self._coalesce

        def fast_body(  # noqa: PLR0917 - positional on purpose: the replay hot path
            stamp: str, host: str, tag: str, pid_text: str | None, queue_id: str | None,
            message: str, source: str, line_no: int, position: str,
        ) -> LogEvent | None:  # fmt: skip
            program = program_cache.get(tag)
            if program is None:
                program = program_of(tag)
            if program is NOT_POSTFIX:
                return None
            if not queue_id and message[:4] == "[ID ":
                return slow(_line(stamp, host, tag, pid_text, message), source, line_no, position)
            at = stamp_cache.get(stamp)
            if at is None:
                at = stamp_of(stamp)
                if at is None:
                    line = _line(stamp, host, tag, pid_text, message)
                    return slow(line, source, line_no, position)
            if at < counts.last:
                counts.lines_time_backwards += 1
            counts.last = at
            if at > counts.latest:  # noqa: PLR1730 - max() costs a call per line
                counts.latest = at
            lines_per_program[tag] += 1
            process = (tag, pid_text or "")
            seen = processes.get(process)
            if seen is None:
                process_counts[tag] = process_counts.get(tag, 0) + 1
                if len(processes) > _PROCESS_WINDOW:
                    processes.clear()
                seen = processes[process] = [at, ""]
            elif coalesce and queue_id and seen[1] == queue_id and seen[0] == at == counts.latest:
                return None
            seen[0] = at
            seen[1] = queue_id or ""
            if program.daemon in MASTER_PROGRAMS:
                forget()
            pid = int(pid_text) if pid_text else 0
            if queue_id:
                return make(
                    at, activity, tag, program.instance, program.service, program.daemon,
                    pid, {"queue_id": queue_id}, source, line_no, position,
                )  # fmt: skip
            kind, fields = classify(program.daemon, message)
            if kind == UNRECOGNIZED:
                line = _line(stamp, host, tag, pid_text, message)
                return finish(
                    at, kind, fields, program, pid, message, line, source, line_no, position
                )
            key = (tag, kind)
            per_program_kind[key] = per_program_kind.get(key, 0) + 1
            return make(
                at, kind, tag, program.instance, program.service, program.daemon, pid, fields,
                source, line_no, position,
            )  # fmt: skip

        return fast_body

    def _make_feed(self) -> LineFeeder:
        fast_match = FAST_SYSLOG.match
        fast_body = self._fast_body
        slow = self._slow_line
        counts = self._counts
        stats = self._stats

        def feed(
            line: bytes | str, source: str = "", line_no: int = 0, position: str = ""
        ) -> LogEvent | None:
            counts.lines_total += 1
            if isinstance(line, bytes):
                if len(line) > MAX_LINE_BYTES:
                    line = line[:MAX_LINE_BYTES]
                    stats.lines_truncated += 1
                try:
                    text = line.decode()
                except UnicodeDecodeError:
                    text = line.decode("utf-8", "replace")
                    stats.lines_undecodable += 1
            else:
                text = line
                if len(text) > MAX_LINE_BYTES:
                    text = text[:MAX_LINE_BYTES]
                    stats.lines_truncated += 1
            text = text.rstrip("\r\n")
            if "\x00" in text:
                # copytruncate leaves NUL runs in front of the next real line: keep it
                text = text.lstrip("\x00").replace("\x00", "\ufffd")
            found = fast_match(text)
            if found is None:
                return slow(text, source, line_no, position)
            stamp, host, tag, pid_text, queue_id, message = found.groups()
            return fast_body(
                stamp, host, tag, pid_text, queue_id, message, source, line_no, position
            )

        return feed

    def feed_block(self, block: bytes, source: str, line_no: int, out: list[LogEvent]) -> int:
        """Classify a block of whole lines (each ending in a newline) into ``out``.

        Returns the number of the block's last line (``line_no`` is the one before it).
        Blocks with NUL bytes, carriage returns or invalid UTF-8 go line by line through
        :attr:`feed`.
        """
        text = None
        if b"\x00" not in block and b"\r" not in block:
            with contextlib.suppress(UnicodeDecodeError):
                text = block.decode()
        append = out.append
        feed = self.feed
        if text is None:
            for line in block.split(b"\n")[:-1]:
                line_no += 1
                event = feed(line, source, line_no)
                if event is not None:
                    append(event)
            return line_no
        # the block's tuples and events are acyclic: pausing the cyclic collector while
        # they are made saves it from scanning them again and again
        collecting = gc.isenabled()
        gc.disable()
        try:
            rows = ACTIVITY_BLOCK.findall(text)
            # lines of other formats are counted again by feed
            self._counts.lines_total += len(rows)
            line_no = self._block_rows(rows, source, line_no, append)
        finally:
            if collecting:
                gc.enable()
        return line_no

    def _block_rows(
        self, rows: list[tuple[str, ...]], source: str, line_no: int,
        append: Callable[[LogEvent], None],
    ) -> int:  # fmt: skip
        """The replay hot path: queue-id lines inline, every other line through feed."""
        feed = self.feed
        fast_body = self._fast_body
        counts = self._counts
        coalesce = self._coalesce
        stamp_cache = self._stamp_cache
        processes = self._processes
        process_counts = self._process_counts
        lines_per_program = self._lines_per_program
        program_cache = self._program_cache
        stamp_of = self._stamp_of
        make = make_log_event
        activity = ACTIVITY_KIND
        last = counts.last
        top = counts.latest
        for stamp, host, tag, pid_text, queue_id, message, other in rows:
            line_no += 1
            if not queue_id:
                counts.last = last
                counts.latest = top
                if stamp:
                    event = fast_body(
                        stamp, host, tag, pid_text, None, message, source, line_no, ""
                    )
                else:
                    counts.lines_total -= 1
                    event = feed(other, source, line_no)
                last = counts.last
                top = counts.latest
                if event is not None:
                    append(event)
                continue
            program = program_cache.get(tag)
            if program is None:
                program = self._program(tag)
            if program is NOT_POSTFIX:
                continue
            at = stamp_cache.get(stamp)
            if at is None:
                at = stamp_of(stamp)
                if at is None:
                    self._stats.lines_malformed += 1
                    continue
            if at < last:
                counts.lines_time_backwards += 1
            last = at
            if at > top:  # noqa: PLR1730 - max() costs a call per line
                top = at
            lines_per_program[tag] += 1
            process = (tag, pid_text)
            seen = processes.get(process)
            if seen is None:
                process_counts[tag] = process_counts.get(tag, 0) + 1
                if len(processes) > _PROCESS_WINDOW:
                    processes.clear()
                processes[process] = [at, queue_id]
            elif coalesce and seen[1] == queue_id and seen[0] == at == top:
                continue
            else:
                seen[0] = at
                seen[1] = queue_id
            event = make(
                at, activity, tag, program.instance, program.service, program.daemon,
                int(pid_text), {"queue_id": queue_id}, source, line_no, "",
            )  # fmt: skip
            append(event)
        counts.last = last
        counts.latest = top
        return line_no

    def line_time(self, line: bytes) -> float | None:
        """The timestamp of one raw line, None when it has none (nothing is counted)."""
        try:
            text = line.decode()
        except UnicodeDecodeError:
            return None
        envelope = parse_envelope(text.rstrip("\r"), self._stamps)
        return None if envelope is None else envelope.at

    def _forget_activity(self) -> None:
        """A master or postfix-script line concerns every process: coalesce none across it."""
        for seen in self._processes.values():
            seen[1] = ""

    def _program(self, tag: str) -> ProgramName:
        """Decompose and cache a tag (NOT_POSTFIX for other programs); the program's line
        counter starts at 0 for Postfix ones."""
        if len(self._program_cache) > _CACHE_LIMIT:
            self._program_cache.clear()
        program = self._programs(tag) or NOT_POSTFIX
        self._program_cache[tag] = program
        if program is not NOT_POSTFIX:
            self._lines_per_program.setdefault(tag, 0)
        return program

    def _stamp_of(self, stamp: str) -> float | None:
        """Seconds of a classic ``Mmm dd hh:mm:ss`` stamp (cached), None when invalid."""
        at = self._stamps.syslog(stamp[:3], stamp[4:6].lstrip(), stamp[7:15])
        if at is not None:
            if len(self._stamp_cache) > _CACHE_LIMIT:
                self._stamp_cache.clear()
            self._stamp_cache[stamp] = at
        return at

    def _finish(  # noqa: PLR0917 - called once per line
        self, at: float, kind: str, fields: dict[str, str], program: ProgramName, pid: int,
        message: str, text: str, source: str, line_no: int, position: str,
    ) -> LogEvent:  # fmt: skip
        key = (program.program, kind)
        self._per_program_kind[key] = self._per_program_kind.get(key, 0) + 1
        if kind == UNRECOGNIZED:
            self._counts.lines_unrecognized += 1
            stats = self._stats
            stats.count_shape(shape_of(program.daemon, message))
            if len(stats.unrecognized_samples) < self._keep:
                stats.unrecognized_samples.append(text[:2000])
        return make_log_event(
            at, kind, program.program, program.instance, program.service, program.daemon,
            pid, fields, source, line_no, position,
        )  # fmt: skip

    def _slow_line(self, text: str, source: str, line_no: int, position: str) -> LogEvent | None:
        if "\xa0" in text:
            # log excerpts pasted from web pages and mail carry no-break spaces
            text = text.replace("\xa0", " ")
        envelope = parse_envelope(text, self._stamps)
        if envelope is None:
            self._stats.lines_malformed += 1
            return None
        return self._event(envelope, text, source, line_no, position)

    def feed_journal(
        self, record: Mapping[str, Any], source: str = "journal", line_no: int = 0,
        position: str = "",
    ) -> LogEvent | None:  # fmt: skip
        """Classify one ``journalctl -o json`` record (position defaults to its cursor)."""
        self._counts.lines_total += 1
        envelope = journal_envelope(record)
        if envelope is None:
            self._stats.lines_malformed += 1
            return None
        if not position:
            cursor = record.get("__CURSOR")
            position = cursor if isinstance(cursor, str) else ""
        return self._event(envelope, envelope.message, source, line_no, position)

    def _event(
        self, envelope: Envelope, text: str, source: str, line_no: int, position: str
    ) -> LogEvent | None:
        program = self._programs(envelope.tag)
        if program is None:
            return None
        at, tag = envelope.at, program.program
        counts = self._counts
        if at < counts.last:
            counts.lines_time_backwards += 1
        counts.last = at
        counts.latest = max(counts.latest, at)
        self._lines_per_program[tag] = self._lines_per_program.get(tag, 0) + 1
        process = (tag, str(envelope.pid) if envelope.pid else "")
        seen = self._processes.get(process)
        kind, fields = self._classify(program.daemon, envelope.message)
        queue_id = fields.get("queue_id", "") if kind == ACTIVITY_KIND else ""
        if seen is None:
            self._process_counts[tag] = self._process_counts.get(tag, 0) + 1
            if len(self._processes) > _PROCESS_WINDOW:
                self._processes.clear()
            self._processes[process] = [at, queue_id]
        elif self._coalesce and queue_id and seen[1] == queue_id and seen[0] == at == counts.latest:
            key = (tag, kind)
            self._per_program_kind[key] = self._per_program_kind.get(key, 0) + 1
            return None
        else:
            seen[0], seen[1] = at, queue_id
        if program.daemon in MASTER_PROGRAMS:
            self._forget_activity()
        message = envelope.message
        return self._finish(
            at, kind, fields, program, envelope.pid, message, text, source, line_no, position
        )


def _line(stamp: str, host: str, tag: str, pid_text: str | None, message: str) -> str:
    """A classic syslog line rebuilt from its parts (for samples and the general path)."""
    pid = f"[{pid_text}]" if pid_text else ""
    return f"{stamp} {host} {tag}{pid}: {message}"


def _by_daemon(per_program: Mapping[str, int]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for program, count in per_program.items():
        if not count:
            continue
        daemon = program.rpartition("/")[2]
        totals[daemon] = totals.get(daemon, 0) + count
    return totals


def iter_log_events(
    paths: Sequence[str], classifier: LogClassifier, *, not_before: float | None = None
) -> Iterator[LogEvent]:
    """LogEvents of every Postfix line in ``paths`` (files, .gz, ``-``, directories),
    read through :class:`~pfwatch.sources.replay.ReplaySource`.

    Lines longer than MAX_LINE_BYTES are cut there and the rest of them skipped. With
    ``not_before``, a file last written well before that moment (a rotated segment,
    gzip'd or not) is skipped whole, and plain files are read from a line somewhat before
    it (found by bisection, :mod:`pfwatch.maillog.seek`); earlier lines may still be
    yielded.
    """
    source = ReplaySource(
        paths,
        max_line_bytes=MAX_LINE_BYTES,
        not_before=None if not_before is None else not_before - OUT_OF_ORDER_SLACK,
        seek=lambda handle, moment: _seek(handle, moment, classifier.line_time),
        on_open=None if classifier.reference_fixed else partial(_reference_from, classifier),
    )
    yield from replay_events(source, classifier)


def replay_events(source: ReplaySource, classifier: LogClassifier) -> Iterator[LogEvent]:
    """The LogEvents of a replay's records, block by block (the classifier's fast path);
    a file that broke off is recorded in ``LineStats.read_errors``."""
    events: list[LogEvent] = []
    feed_block, feed = classifier.feed_block, classifier.feed
    try:
        while True:
            records = source.poll()
            if not records:
                break
            for record in records:
                if record.whole:
                    feed_block(record.data, record.source, record.line_no, events)
                else:
                    event = feed(record.data, record.source, record.line_no + 1)
                    if event is not None:
                        events.append(event)
            yield from events
            events.clear()
            _read_errors(source, classifier)
    finally:
        source.close()
    _read_errors(source, classifier)


def _read_errors(source: ReplaySource, classifier: LogClassifier) -> None:
    errors = classifier.stats.read_errors
    for notice in source.notices():
        if len(errors) < MAX_READ_ERRORS:
            errors.append(notice)


def _reference_from(classifier: LogClassifier, name: str) -> None:
    """Date a yearless log by its file's modification time (the time of its last line)."""
    with contextlib.suppress(OSError):
        classifier.reference_time = Path(name).stat().st_mtime


def _seek(handle: IO[bytes], moment: float, line_time: Callable[[bytes], float | None]) -> int:
    """Move ``handle`` to a line start before ``moment``; returns the lines skipped.

    Pipes and other unseekable inputs (``--maillog /dev/stdin``) are read whole."""
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode):
        return 0
    offset = start_offset(handle, info.st_size, moment, line_time)
    return lines_before(handle, offset)
