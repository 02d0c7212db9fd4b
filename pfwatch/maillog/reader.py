"""Read maillog lines into :class:`~pfwatch.events.LogEvent` objects, with statistics.

:class:`LogClassifier` turns one line (bytes or str) or one journald JSON record into a
LogEvent (``None`` for lines of other programs and for lines without a recognizable
envelope) and keeps :class:`LineStats`. :func:`iter_log_events` replays files (plain or
gzip), ``-`` for stdin and directories of rotated files, oldest first. Inputs: lines,
records, paths. Outputs: LogEvents and statistics. Errors: bad lines are counted, never
raised; an unreadable path raises :class:`~pfwatch.errors.SourceUnavailable`, a file that
breaks off mid-way (corrupt gzip, I/O error) is recorded in ``LineStats.read_errors``.
Memory is bounded: no per-line retention, capped samples and shape counters.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import tzinfo
from pathlib import Path
from typing import IO, Any, Protocol

from pfwatch.errors import SourceUnavailable
from pfwatch.events import LogEvent
from pfwatch.maillog.classify import ACTIVITY_KIND, ACTIVITY_PATTERN, UNRECOGNIZED, Classifier
from pfwatch.maillog.envelope import (
    Envelope,
    TimestampParser,
    fast_syslog_regex,
    journal_envelope,
    parse_envelope,
)
from pfwatch.maillog.program import ProgramDecomposer, ProgramName

FAST_SYSLOG = fast_syslog_regex(ACTIVITY_PATTERN)
"""Classic syslog lines in one match: stamp, tag, pid, queue id (if any), message."""
MAX_LINE_BYTES = 64 * 1024
"""Longer lines are cut here (counted in ``lines_truncated``); the rest is skipped."""
SHAPES_LIMIT = 200
MAX_READ_ERRORS = 20
_PROCESS_WINDOW = 65536

_SHAPE_SUBS = (
    (re.compile(r"\[[^\]]*\](?::\d+)?"), "[ADDR]"),
    (re.compile(r"<[^>]*>"), "<ADDR>"),
    (re.compile(r"\b[0-9A-F]{6,}\b|\b[0-9a-f]{8,}\b"), "HEX"),
    (re.compile(r"\S+@\S+"), "ADDR@"),
    (re.compile(r"\d+"), "N"),
)
_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<num>\d{1,4})|-(?P<date>\d{8,10}))?(?:\.gz)?$")


def shape_of(daemon: str, message: str) -> str:
    """The message with numbers, queue ids and addresses normalised, for counting."""
    text = message[:300]
    for regex, replacement in _SHAPE_SUBS:
        text = regex.sub(replacement, text)
    return f"{daemon}: {text[:160]}"


@dataclass
class LineStats:
    """Counters over every line fed; ``recognized + unrecognized == postfix``."""

    lines_total: int = 0
    lines_postfix: int = 0
    lines_recognized: int = 0
    lines_unrecognized: int = 0
    lines_malformed: int = 0
    lines_time_backwards: int = 0
    lines_truncated: int = 0
    lines_undecodable: int = 0
    per_daemon: dict[str, int] = field(default_factory=dict)
    processes_per_daemon: dict[str, int] = field(default_factory=dict)
    per_kind: dict[str, int] = field(default_factory=dict)
    unrecognized_shapes: Counter[str] = field(default_factory=Counter)
    unrecognized_samples: list[str] = field(default_factory=list)
    read_errors: list[str] = field(default_factory=list)

    def count_shape(self, shape: str) -> None:
        """Count one unrecognized shape, keeping only the most common when too many."""
        self.unrecognized_shapes[shape] += 1
        if len(self.unrecognized_shapes) > 2 * SHAPES_LIMIT:
            self.unrecognized_shapes = Counter(
                dict(self.unrecognized_shapes.most_common(SHAPES_LIMIT))
            )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary; keys are stable (documented in docs/events.md)."""
        return {
            "lines_total": self.lines_total,
            "lines_postfix": self.lines_postfix,
            "lines_recognized": self.lines_recognized,
            "lines_unrecognized": self.lines_unrecognized,
            "lines_malformed": self.lines_malformed,
            "lines_time_backwards": self.lines_time_backwards,
            "lines_truncated": self.lines_truncated,
            "lines_undecodable": self.lines_undecodable,
            "per_daemon": dict(sorted(self.per_daemon.items())),
            "processes_per_daemon": dict(sorted(self.processes_per_daemon.items())),
            "per_kind": dict(sorted(self.per_kind.items())),
            "unrecognized_shapes": [
                {"shape": shape, "count": count}
                for shape, count in self.unrecognized_shapes.most_common(SHAPES_LIMIT)
            ],
            "unrecognized_samples": list(self.unrecognized_samples),
            "read_errors": list(self.read_errors),
        }


def _event_factory() -> Callable[..., LogEvent]:
    """A LogEvent constructor that fills the slots directly (2-3x faster than __init__).

    The frozen dataclass' generated __init__ calls object.__setattr__ per field; the slot
    descriptors do the same work without the Python-level indirection. Falls back to the
    class itself if the slots ever stop matching the fields.
    """
    names = tuple(f.name for f in dataclass_fields(LogEvent))
    if names != tuple(getattr(LogEvent, "__slots__", ())) or len(names) != 11:
        return LogEvent
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = (
        getattr(LogEvent, name).__set__ for name in names
    )
    new = object.__new__

    def make(  # noqa: PLR0917 - positional on purpose: the replay hot path
        at: float,
        kind: str,
        program: str,
        instance: str,
        service: str,
        daemon: str,
        pid: int,
        fields: Mapping[str, str],
        source: str,
        line_no: int,
        position: str,
    ) -> LogEvent:
        event: LogEvent = new(LogEvent)
        s0(event, at)
        s1(event, kind)
        s2(event, program)
        s3(event, instance)
        s4(event, service)
        s5(event, daemon)
        s6(event, pid)
        s7(event, fields)
        s8(event, source)
        s9(event, line_no)
        s10(event, position)
        return event

    return make


make_log_event = _event_factory()


class LineFeeder(Protocol):
    """The signature of :attr:`LogClassifier.feed`."""

    def __call__(
        self, line: bytes | str, source: str = "", line_no: int = 0, position: str = ""
    ) -> LogEvent | None:
        """Classify one line."""


class LogClassifier:
    """Stateful line classifier: envelope, program name, catalogue kind, statistics.

    ``reference_time`` fixes the year of syslog dates (default: now, or each file's
    modification time in :func:`iter_log_events`); ``syslog_services`` maps syslog names
    from master.cf ``-o syslog_name=...`` to service names; ``keep_unrecognized`` is how
    many unrecognized lines to keep verbatim in ``stats.unrecognized_samples``. With
    ``coalesce_activity`` a ``message_activity`` line of a process that already had a line
    in the same whole second is counted but yields no event (the busy proof is the same);
    replay uses it to create far fewer objects.
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
        self._stamp_cache: dict[str, float] = {}
        # hot-path counters, folded into ``stats`` on access: [total, postfix, recognized,
        # time backwards, last timestamp]; line counts per (program, kind) and activity
        # lines per program; processes seen recently: (program, pid) -> last activity time
        self._counts: list[float] = [0, 0, 0, 0, -1e300]
        self._per_program_kind: dict[tuple[str, str], int] = {}
        self._activity_per_program: dict[str, int] = {}
        self._processes: dict[tuple[str, str], float] = {}
        self._process_counts: dict[str, int] = {}
        self._coalesce = coalesce_activity
        self.feed: LineFeeder = self._make_fast_feed(coalesce_activity)
        """Classify one line; None for malformed lines and other programs' lines."""

    @property
    def stats(self) -> LineStats:
        """Statistics so far (hot-path counters folded in)."""
        stats = self._stats
        total, postfix, recognized, backwards = (int(n) for n in self._counts[:4])
        stats.lines_total = total
        stats.lines_postfix = postfix
        stats.lines_recognized = recognized
        stats.lines_unrecognized = postfix - recognized
        stats.lines_time_backwards = backwards
        per_daemon: dict[str, int] = {}
        per_kind: dict[str, int] = {}
        pairs = [*self._per_program_kind.items()]
        pairs += [((tag, ACTIVITY_KIND), n) for tag, n in self._activity_per_program.items()]
        for (program, kind), count in pairs:
            daemon = program.rpartition("/")[2]
            per_daemon[daemon] = per_daemon.get(daemon, 0) + count
            per_kind[kind] = per_kind.get(kind, 0) + count
        stats.per_daemon = per_daemon
        stats.per_kind = per_kind
        processes: dict[str, int] = {}
        for tag, count in self._process_counts.items():
            daemon = tag.rpartition("/")[2]
            processes[daemon] = processes.get(daemon, 0) + count
        stats.processes_per_daemon = processes
        return stats

    @property
    def reference_time(self) -> float:
        """The moment syslog dates are read relative to (decides their year)."""
        return self._stamps.reference_time

    @reference_time.setter
    def reference_time(self, value: float) -> None:
        self._stamps.reference_time = value
        self._stamp_cache.clear()

    def _make_fast_feed(self, coalesce: bool) -> LineFeeder:
        fast_match = FAST_SYSLOG.match
        stamp_cache = self._stamp_cache
        syslog_stamp = self._stamps.syslog
        program_cache: dict[str, ProgramName | None] = {}
        programs = self._programs
        classify = self._classify
        counts = self._counts
        activity_per_program = self._activity_per_program
        processes = self._processes
        process_counts = self._process_counts
        slow = self._slow_line
        finish = self._finish
        make = make_log_event
        activity = ACTIVITY_KIND
        max_len = MAX_LINE_BYTES
        window = _PROCESS_WINDOW
        stats = self._stats

        def feed(
            line: bytes | str, source: str = "", line_no: int = 0, position: str = ""
        ) -> LogEvent | None:
            counts[0] += 1
            if isinstance(line, bytes):
                if len(line) > max_len:
                    line = line[:max_len]
                    stats.lines_truncated += 1
                try:
                    text = line.decode()
                except UnicodeDecodeError:
                    text = line.decode("utf-8", "replace")
                    stats.lines_undecodable += 1
            else:
                text = line
                if len(text) > max_len:
                    text = text[:max_len]
                    stats.lines_truncated += 1
            if text[-1:] == "\n":
                text = text.rstrip("\r\n")
            if "\x00" in text:
                # copytruncate leaves NUL runs in front of the next real line: keep it
                text = text.lstrip("\x00").replace("\x00", "\ufffd")
            found = fast_match(text)
            if found is None:
                return slow(text, source, line_no, position)
            stamp, tag, pid_text, queue_id, message = found.groups()
            if queue_id is None and message[:4] == "[ID ":
                return slow(text, source, line_no, position)
            try:
                program = program_cache[tag]
            except KeyError:
                program = program_cache[tag] = programs(tag)
                if len(program_cache) > 4096:
                    program_cache.clear()
            if program is None:
                return None
            at = stamp_cache.get(stamp)
            if at is None:
                at = syslog_stamp(stamp[:3], stamp[4:6].lstrip(), stamp[7:15])
                if at is None:
                    return slow(text, source, line_no, position)
                if len(stamp_cache) > 4096:
                    stamp_cache.clear()
                stamp_cache[stamp] = at
            if at < counts[4]:
                counts[3] += 1
            counts[4] = at
            counts[1] += 1
            process = (tag, pid_text)
            seen = processes.get(process)
            if seen is None:
                process_counts[tag] = process_counts.get(tag, 0) + 1
                if len(processes) > window:
                    processes.clear()
            processes[process] = at
            if queue_id is not None:
                activity_per_program[tag] = activity_per_program.get(tag, 0) + 1
                counts[2] += 1
                if coalesce and seen == at:
                    return None
                return make(
                    at,
                    activity,
                    tag,
                    program.instance,
                    program.service,
                    program.daemon,
                    int(pid_text) if pid_text else 0,
                    {"queue_id": queue_id},
                    source,
                    line_no,
                    position,
                )
            kind, fields = classify(program.daemon, message)
            return finish(
                at,
                kind,
                fields,
                program,
                int(pid_text) if pid_text else 0,
                message,
                text,
                source,
                line_no,
                position,
            )

        return feed

    def _finish(  # noqa: PLR0917 - called once per line
        self,
        at: float,
        kind: str,
        fields: dict[str, str],
        program: ProgramName,
        pid: int,
        message: str,
        text: str,
        source: str,
        line_no: int,
        position: str,
    ) -> LogEvent:
        key = (program.program, kind)
        self._per_program_kind[key] = self._per_program_kind.get(key, 0) + 1
        if kind == UNRECOGNIZED:
            stats = self._stats
            stats.count_shape(shape_of(program.daemon, message))
            if len(stats.unrecognized_samples) < self._keep:
                stats.unrecognized_samples.append(text[:2000])
        else:
            self._counts[2] += 1
        return make_log_event(
            at,
            kind,
            program.program,
            program.instance,
            program.service,
            program.daemon,
            pid,
            fields,
            source,
            line_no,
            position,
        )

    def _slow_line(self, text: str, source: str, line_no: int, position: str) -> LogEvent | None:
        envelope = parse_envelope(text, self._stamps)
        if envelope is None:
            self._stats.lines_malformed += 1
            return None
        return self._event(envelope, text, source, line_no, position)

    def feed_journal(
        self,
        record: Mapping[str, Any],
        source: str = "journal",
        line_no: int = 0,
        position: str = "",
    ) -> LogEvent | None:
        """Classify one ``journalctl -o json`` record (position defaults to its cursor)."""
        self._counts[0] += 1
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
        at = envelope.at
        counts = self._counts
        if at < counts[4]:
            counts[3] += 1
        counts[4] = at
        counts[1] += 1
        process = (program.program, str(envelope.pid))
        seen = self._processes.get(process)
        if seen is None:
            tag = program.program
            self._process_counts[tag] = self._process_counts.get(tag, 0) + 1
            if len(self._processes) > _PROCESS_WINDOW:
                self._processes.clear()
        self._processes[process] = at
        kind, fields = self._classify(program.daemon, envelope.message)
        if self._coalesce and kind == ACTIVITY_KIND and seen is not None and int(seen) == int(at):
            key = (program.program, kind)
            self._per_program_kind[key] = self._per_program_kind.get(key, 0) + 1
            self._counts[2] += 1
            return None
        return self._finish(
            at,
            kind,
            fields,
            program,
            envelope.pid,
            envelope.message,
            text,
            source,
            line_no,
            position,
        )


def rotation_order(paths: Sequence[Path]) -> list[Path]:
    """Rotated files oldest first: ``x.3.gz, x.2.gz, x.1, x`` and ``x-20240101, x``."""

    def key(path: Path) -> tuple[str, int, str]:
        match = _ROTATED.match(path.name)
        if match is None:
            return (path.name, 0, path.name)
        if match.group("num") is not None:
            return (match.group("base"), -int(match.group("num")), path.name)
        if match.group("date") is not None:
            return (match.group("base"), -(10**11) + int(match.group("date")), path.name)
        return (match.group("base"), 0, path.name)

    return sorted(paths, key=key)


def _expand(paths: Sequence[str]) -> Iterator[str]:
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            entries = [
                entry
                for entry in path.iterdir()
                if entry.is_file() and not entry.name.startswith(".")
            ]
            yield from (str(entry) for entry in rotation_order(entries))
        else:
            yield name


def _open(name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    try:
        handle = Path(name).open("rb")  # noqa: SIM115 - closed by iter_log_events
        if handle.peek(2)[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
        return handle
    except OSError as exc:
        raise SourceUnavailable(name, exc.strerror or str(exc)) from exc


def iter_log_events(paths: Sequence[str], classifier: LogClassifier) -> Iterator[LogEvent]:
    """LogEvents of every Postfix line in ``paths`` (files, .gz, ``-``, directories).

    Lines longer than MAX_LINE_BYTES are cut there and the rest of them skipped.
    """
    feed = classifier.feed
    limit = MAX_LINE_BYTES + 1
    for name in _expand(paths):
        handle = _open(name)
        source = "<stdin>" if name == "-" else name
        if name != "-" and not classifier.reference_fixed:
            with contextlib.suppress(OSError):
                classifier.reference_time = Path(name).stat().st_mtime
        readline = handle.readline
        line_no = 0
        try:
            while True:
                line = readline(limit)
                if not line:
                    break
                line_no += 1
                if len(line) == limit and line[-1] != 10:
                    rest = readline(limit)
                    while rest and rest[-1] != 10:
                        rest = readline(limit)
                event = feed(line, source, line_no)
                if event is not None:
                    yield event
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            errors = classifier.stats.read_errors
            if len(errors) < MAX_READ_ERRORS:
                errors.append(f"{source}:{line_no + 1}: {exc}")
        finally:
            if name != "-":
                handle.close()
