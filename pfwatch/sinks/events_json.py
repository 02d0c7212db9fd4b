"""Findings as one JSON object per line (the event stream of ``pfwatch watch``).

Inputs: :class:`pfwatch.events.Finding`. Outputs: lines on a text stream (stdout by
default), each a JSON object whose keys come in a fixed order: ``event`` (the finding
name), ``ts`` (RFC 3339 UTC, :func:`pfwatch.events.rfc3339_utc`), ``event_id``, ``basis``,
then the finding's data fields sorted by name (a data field named like a head field is
dropped when equal and renamed ``data_<name>`` otherwise). Moments in the data (``*_at``
and window bounds, at any depth) are written as RFC 3339 UTC strings too
(:func:`pfwatch.events.machine_times`); NaN and infinities become null. On a terminal the
same record is rendered by structlog's ConsoleRenderer (see :mod:`pfwatch.service.log_setup`).
Errors: OSError of the stream propagates (a closed stdout is the caller's to handle).
The spec of names and fields is docs/events.md.

``event_id`` (:func:`pfwatch.events.event_id_for`) makes the stream exactly-once
friendly: a replay of the same input yields the same id and a consumer can drop repeats.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from pfwatch.events import Finding, event_id_for, machine_times, rfc3339_utc

HEAD_FIELDS: tuple[str, ...] = ("event", "ts", "event_id", "basis")
"""Keys every event line starts with, in this order."""

Record = dict[str, Any]
Renderer = Callable[[Mapping[str, Any]], str]


def event_record(finding: Finding) -> Record:
    """The ordered JSON-ready record of one finding (see the module docstring)."""
    record: Record = {
        "event": finding.name,
        "ts": rfc3339_utc(finding.at),
        "event_id": event_id_for(finding),
        "basis": finding.basis,
    }
    for key in sorted(finding.data):
        if key == "event_id":
            continue
        value = machine_times({key: finding.data[key]})[key]
        name = key
        if key in record:
            if record[key] == value:
                continue  # e.g. the engine repeating ``basis`` in data
            name = f"data_{key}"
        record[name] = value
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
