"""Findings as one JSON object per line (the event stream of ``pfwatch watch``).

Inputs: :class:`pfwatch.events.Finding`. Outputs: lines on a text stream (stdout by
default), each a JSON object whose keys come in a fixed order: ``event`` (the finding
name), ``ts`` (ISO 8601 UTC), ``event_id``, ``basis``, then the finding's data fields
sorted by name (a data field named like a head field is dropped when equal and
renamed ``data_<name>`` otherwise). Data fields whose name ends in ``_at`` and whose
value is a number are POSIX times and are written as ISO 8601 UTC strings too; NaN and
infinities become null. On a terminal the same record is rendered by structlog's
ConsoleRenderer (see :mod:`pfwatch.logging`). Errors: OSError of the stream propagates
(a closed stdout is the caller's to handle). The spec of names and fields is docs/events.md.

``event_id`` makes the stream exactly-once friendly: it is a digest of the finding's
name, time, basis and data, which the engine derives from the source position or change
id it came from, so a replay of the same input yields the same id and a consumer can drop
repeats. An explicit ``data["event_id"]`` string wins.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from pfwatch.events import Finding

HEAD_FIELDS: tuple[str, ...] = ("event", "ts", "event_id", "basis")
"""Keys every event line starts with, in this order."""

Record = dict[str, Any]
Renderer = Callable[[Mapping[str, Any]], str]


def iso_utc(at: float) -> str:
    """POSIX seconds → ``2026-11-22T00:45:00.123456Z`` (microseconds, always UTC)."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_id_for(finding: Finding) -> str:
    """The stable identity of a finding: same input, same id (24 hex digits)."""
    explicit = finding.data.get("event_id")
    if isinstance(explicit, str) and explicit:
        return explicit
    canonical = json.dumps(
        [finding.name, repr(float(finding.at)), finding.basis, _jsonable(finding.data)],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def event_record(finding: Finding) -> Record:
    """The ordered JSON-ready record of one finding (see the module docstring)."""
    record: Record = {
        "event": finding.name,
        "ts": iso_utc(finding.at),
        "event_id": event_id_for(finding),
        "basis": finding.basis,
    }
    for key in sorted(finding.data):
        if key == "event_id":
            continue
        value = finding.data[key]
        if key.endswith("_at") and isinstance(value, int | float) and not isinstance(value, bool):
            value = iso_utc(float(value)) if math.isfinite(value) else None
        name = key
        if key in record:
            if record[key] == value:
                continue  # e.g. the engine repeating ``basis`` in data
            name = f"data_{key}"
        record[name] = _jsonable(value)
    return record


def render_json(record: Mapping[str, Any]) -> str:
    """One compact JSON line, keys in the record's order."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)


class EventsJsonSink:
    """Writes each finding as one line; thread-safe with structlog's writers on the stream."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        render: Renderer = render_json,
        redact: Callable[[Record], Record] | None = None,
    ) -> None:
        # structlog (with rich) is slow to import: only commands that write events need it
        from structlog import WriteLogger  # noqa: PLC0415

        self._writer = WriteLogger(stream if stream is not None else sys.stdout)
        self._render = render
        self._redact = redact
        self.emitted = 0

    def emit(self, finding: Finding) -> None:
        record = event_record(finding)
        if self._redact is not None:
            record = self._redact(record)
        self._writer.msg(self._render(record))
        self.emitted += 1

    def close(self) -> None:
        pass  # every line is flushed as it is written; the stream belongs to the caller


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(_jsonable(item) for item in value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; "never" and "unknown" are null
    return value
