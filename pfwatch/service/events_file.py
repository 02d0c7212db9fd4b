"""``--events-file FILE``: the event stream appended to a file, exactly once.

Why a file: on stdout an event is written twice when pfwatch dies between writing the
line and recording the write in the state database (docs/events.md §1.3); nothing can
look back at what a pipe already carried. A file can be read back: at start-up
:func:`reconcile` reads the file's last lines, removes a torn last line (``kill -9`` in
the middle of a write), and marks the committed-but-unmarked events it finds there as
written, so the outbox does not write them again. Events committed before the crash are
always the last lines of the file (the outbox writes in commit order and nothing else
writes to it), so reading ``len(pending)`` lines back is enough.

Inputs: the path; the :class:`~pfwatch.store.sqlite.StateStore`. Outputs: a sink (one
JSON line per finding, flushed per line) and the number of events reconciled. Errors:
:class:`pfwatch.errors.SourceUnavailable` when the file cannot be opened for appending.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

from pfwatch.errors import SourceUnavailable
from pfwatch.sinks.events_json import EventsJsonSink
from pfwatch.store.sqlite import StateStore

_CHUNK = 64 * 1024


def open_events_file(path: Path) -> tuple[EventsJsonSink, TextIO]:
    """An :class:`EventsJsonSink` appending to ``path`` (and the stream, to close)."""
    try:
        stream = path.open("a", encoding="utf-8", buffering=1)
    except OSError as exc:
        raise SourceUnavailable(str(path), f"cannot append events: {exc.strerror or exc}") from exc
    return EventsJsonSink(stream), stream


def reconcile(path: Path, store: StateStore) -> int:
    """Mark pending events already present at the end of ``path`` as written.

    Also cuts a torn last line. Returns how many pending events were found written.
    """
    pending = [event_id for event_id, _ in store.unemitted()]
    _cut_torn_tail(path)
    if not pending:
        return 0
    written = _last_event_ids(path, len(pending))
    found = [event_id for event_id in pending if event_id in written]
    store.mark_emitted(found)
    return len(found)


def _cut_torn_tail(path: Path) -> None:
    try:
        with path.open("rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            end = size
            while end > 0:
                start = max(0, end - _CHUNK)
                handle.seek(start)
                chunk = handle.read(end - start)
                cut = chunk.rfind(b"\n")
                if cut >= 0:
                    end = start + cut + 1
                    break
                end = start
            if end != size:
                handle.truncate(end)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SourceUnavailable(str(path), f"cannot repair events file: {exc.strerror}") from exc


def _last_event_ids(path: Path, count: int) -> set[str]:
    lines: list[bytes] = []
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            rest = b""
            while end > 0 and len(lines) <= count:
                start = max(0, end - _CHUNK)
                handle.seek(start)
                data = handle.read(end - start) + rest
                parts = data.split(b"\n")
                rest = parts[0] if start > 0 else b""
                lines = [*(p for p in (parts if start == 0 else parts[1:]) if p), *lines]
                end = start
    except FileNotFoundError:
        return set()
    found: set[str] = set()
    for raw in lines[-count:]:
        try:
            event_id = json.loads(raw).get("event_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(event_id, str):
            found.add(event_id)
    return found
