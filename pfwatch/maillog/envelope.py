"""Split a maillog line into its envelope: time, host, syslog tag, pid and message.

Inputs: one decoded line (no trailing newline) or one journald JSON record. Outputs:
:class:`Envelope` or ``None`` when the line has no recognizable envelope (the caller counts
it as malformed). Errors: none raised; bad timestamps yield ``None``. Formats come from
:mod:`pfwatch.grammars.maillog_envelope`; syslog dates without a year take it from a
reference time (a December line read in January belongs to the previous year).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from pfwatch.grammars.maillog_envelope import (
    FAST_SYSLOG_PREFIX,
    FORMATS,
    JOURNAL_FIELDS,
    MONTHS,
    PREFIXES,
    SOLARIS_ID,
)

_FORMATS = tuple((fmt.name, re.compile(fmt.pattern)) for fmt in FORMATS)
_PREFIXES = tuple((fmt.name, re.compile(fmt.pattern)) for fmt in PREFIXES)
_SOLARIS = re.compile(SOLARIS_ID.pattern)
_CLASSIC = _FORMATS[0][1]
_FUTURE_SLACK = 2 * 86400.0  # clock skew and time zones: a line may look this far ahead
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Envelope:
    """The parts of a log line around the Postfix message."""

    at: float
    host: str
    tag: str
    pid: int
    message: str
    format: str


class TimestampParser:
    """Turns the timestamp groups of a matched line into POSIX seconds, with caching.

    ``reference_time`` supplies the year of syslog dates; ``tz`` is the zone of stamps
    without an offset (default: this machine's local zone, like syslogd).
    """

    def __init__(self, reference_time: float | None = None, tz: tzinfo | None = None) -> None:
        self._tz = tz
        self._cache: dict[str, float] = {}
        self.reference_time = time.time() if reference_time is None else reference_time

    @property
    def reference_time(self) -> float:
        """The moment the log is read "as of"; decides the year of syslog dates."""
        return self._reference

    @reference_time.setter
    def reference_time(self, value: float) -> None:
        self._reference = value
        self._reference_year = time.localtime(value).tm_year
        self._cache.clear()

    def _local(self, year: int, month: int, day: int, hms: str) -> float:
        hour, minute, second = int(hms[0:2]), int(hms[3:5]), int(hms[6:8])
        if self._tz is not None:
            stamp = datetime(year, month, day, hour, minute, second, tzinfo=self._tz)
            return stamp.timestamp()
        if second == 60:  # leap second: keep the line, fold into the next second
            return self._local(year, month, day, hms[:6] + "59") + 1.0
        return time.mktime((year, month, day, hour, minute, second, 0, 0, -1))

    def syslog(self, mon: str, day: str, hms: str, year: str | None = None) -> float | None:
        """Seconds for a year-less (or explicit-year) syslog date; None when invalid."""
        key = f"{year}{mon}{day}{hms}"
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        month = MONTHS.get(mon)
        if month is None:
            return None
        try:
            if year is not None:
                value = self._local(int(year), month, int(day), hms)
            else:
                ref_year = self._reference_year
                value = self._local(ref_year, month, int(day), hms)
                if value > self._reference + _FUTURE_SLACK:
                    value = self._local(ref_year - 1, month, int(day), hms)
        except (ValueError, OverflowError):
            return None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = value
        return value

    def iso(self, text: str) -> float | None:
        """Seconds for an RFC 3339 / ISO 8601 stamp (any fraction length, Z or offset)."""
        head, frac = text[:19], 0.0
        rest = text[19:]
        if rest[:1] in (".", ","):
            digits = len(rest) - len(rest[1:].lstrip("0123456789"))
            frac = float("0." + rest[1:digits]) if digits > 1 else 0.0
            rest = rest[digits:]
        key = head + rest
        base = self._cache.get(key)
        if base is None:
            try:
                stamp = datetime.fromisoformat(head.replace(" ", "T"))
            except ValueError:
                return None
            if rest in ("Z", "z"):
                stamp = stamp.replace(tzinfo=UTC)
            elif rest:
                sign = -1 if rest[0] == "-" else 1
                hhmm = rest[1:].replace(":", "")
                if len(hhmm) != 4 or not hhmm.isdigit():
                    return None
                offset = timedelta(hours=int(hhmm[:2]), minutes=int(hhmm[2:]))
                stamp = stamp.replace(tzinfo=timezone(sign * offset))
            elif self._tz is not None:
                stamp = stamp.replace(tzinfo=self._tz)
            base = stamp.timestamp()
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = base
        return base + frac


def _finish(
    match: re.Match[str], stamps: TimestampParser, fmt: str, at: float | None
) -> Envelope | None:
    groups = match.groupdict()
    if at is None:
        iso = groups.get("iso")
        if iso is not None:
            at = stamps.iso(iso)
        else:
            at = stamps.syslog(groups["mon"], groups["day"], groups["time"], groups.get("year"))
            frac = groups.get("frac")
            if at is not None and frac:
                at += float(frac)
    if at is None:
        return None
    message = groups["msg"]
    if message.startswith("[ID "):
        message = _SOLARIS.sub("", message, count=1)
    pid = groups["pid"]
    return Envelope(at, groups["host"], groups["tag"], int(pid) if pid else 0, message, fmt)


def parse_envelope(line: str, stamps: TimestampParser) -> Envelope | None:
    """Envelope of one line in any known format, or None when none matches."""
    match = _CLASSIC.match(line)
    if match is not None:
        return _finish(match, stamps, "syslog", None)
    for name, regex in _FORMATS[1:]:
        match = regex.match(line)
        if match is not None:
            return _finish(match, stamps, name, None)
    for prefix_name, prefix in _PREFIXES:
        head = prefix.match(line)
        if head is None:
            continue
        at = stamps.iso(head.group("iso"))
        rest = line[head.end() :]
        for name, regex in _FORMATS:
            match = regex.match(rest)
            if match is not None:
                return _finish(match, stamps, f"{prefix_name}+{name}", at)
    return None


def journal_envelope(record: Mapping[str, Any]) -> Envelope | None:
    """Envelope of one ``journalctl -o json`` record, or None when fields are missing.

    MESSAGE may be a string or (for non-UTF-8 text) a list of byte values.
    """
    message = record.get(str(JOURNAL_FIELDS["message"]))
    tag = record.get(str(JOURNAL_FIELDS["identifier"]))
    realtime = record.get(str(JOURNAL_FIELDS["realtime"]))
    if isinstance(message, list):
        try:
            message = bytes(message).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return None
    if not isinstance(message, str) or not isinstance(tag, str) or not tag:
        return None
    try:
        at = int(str(realtime)) / 1_000_000
    except ValueError:
        return None
    pid = 0
    for key in JOURNAL_FIELDS["pid"]:
        value = record.get(key)
        if value is not None and str(value).isdigit():
            pid = int(str(value))
            break
    host = record.get(str(JOURNAL_FIELDS["host"]))
    if message.startswith("[ID "):
        message = _SOLARIS.sub("", message, count=1)
    return Envelope(at, host if isinstance(host, str) else "", tag, pid, message, "journal")


def fast_syslog_regex(message_head: str) -> re.Pattern[str]:
    """The classic-syslog fast-path regex with ``message_head`` as an optional group.

    Groups in order: stamp, host, tag, pid, the first group of ``message_head``, msg.
    """
    return re.compile(f"{FAST_SYSLOG_PREFIX}(?:{message_head})?(?P<msg>.*)", re.DOTALL)


def activity_block_regex(queue_id_head: str, max_rest: int) -> re.Pattern[str]:
    """The replay block regex for ``findall``: one 7-tuple per line.

    A classic syslog line with a pid gives ``(stamp, host, tag, pid, queue_id, message,
    "")``: when its message starts with ``queue_id_head`` (whose one group is the queue
    id) the message itself is not captured (the replay needs only the id), otherwise
    ``queue_id`` is empty. Any other line, and one whose message is longer than
    ``max_rest`` characters, gives ``("", "", "", "", "", "", line)``.
    """
    stamp = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
    return re.compile(
        rf"(?m)^(?P<stamp>{stamp}) (?P<host>\S+) (?P<tag>[^\s\[:]+)\[(?P<pid>\d+)\]: ?"
        rf"(?:{queue_id_head}[^\n]{{0,{max_rest}}}|(?P<msg>[^\n]{{0,{max_rest}}}))\n"
        r"|(?P<other>[^\n]*)\n"
    )
