"""The protocol every log source follows, so the watch loop and ``explain`` treat a log
file, a directory of rotated files, stdin and journald alike.

Inputs: none. Outputs: the :class:`Record` and :class:`Source` protocols and
:class:`SourceStatus`, the health of one input as the service reports it to sinks
(/metrics, /status). Errors: sources
raise :class:`pfwatch.errors.SourceUnavailable` only when they cannot start at all; while
running they report problems through :meth:`Source.notices` and keep going.

Exactly-once contract: every record carries ``checkpoint``, an opaque string that names
the point just *after* that record. The caller commits the checkpoint of the last record
it processed in the same transaction as that record's effects; a source rebuilt from the
checkpoint delivers the next record, never one already committed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Health and progress of one input (log file, journal, config watcher, /proc)."""

    up: bool
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    last_line_at: float | None = None
    error: str | None = None


class Record(Protocol):
    """One raw record: a log line, or one journal entry's message."""

    @property
    def data(self) -> bytes:
        """The raw bytes (a log line without its newline; a journal ``MESSAGE``)."""
        ...

    @property
    def checkpoint(self) -> str:
        """Resume token naming the point after this record."""
        ...


class Source(Protocol):
    """A stream of records that can be polled without blocking or followed until stopped."""

    def poll(self) -> Sequence[Record]:
        """The records available now (possibly none); never blocks for long."""
        ...

    def follow(self, stop: threading.Event) -> Iterator[Record]:
        """Blocking iteration until ``stop`` is set."""
        ...

    def notices(self) -> list[str]:
        """Problems met since the last call, as sentences naming the file or command."""
        ...

    def close(self) -> None:
        """Release files and child processes."""
        ...
