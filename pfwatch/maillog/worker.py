"""Read and classify maillog files in a worker process while the caller folds the events.

:class:`WorkerReader` runs :func:`~pfwatch.maillog.reader.iter_log_events` with its own
:class:`~pfwatch.maillog.reader.LogClassifier` in a forked child and yields the same
LogEvents, in the same order, in the parent: the machine's second core classifies while
the first one folds. Events travel in pickled batches through a pipe (bounded: the child
waits while the parent is behind); each event is sent as the arguments of
:func:`~pfwatch.maillog.construct.make_log_event`, the cheapest way to rebuild it. The
classifier's statistics arrive after the last batch (:attr:`WorkerReader.stats`).
Measured on two cores, moving the events costs more than the second core saves (the
child, pickling, is the slower side), so ``explain`` uses it only when asked.
Inputs: paths and the classifier's options. Outputs: LogEvents, then LineStats.
Errors: an unreadable path raises :class:`~pfwatch.errors.SourceUnavailable` in the parent
before the child starts; a child that fails otherwise raises
:class:`~pfwatch.errors.SourceUnavailable` naming the first path and the child's error.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import pickle
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

from pfwatch.errors import SourceUnavailable
from pfwatch.events import LogEvent
from pfwatch.maillog.construct import make_log_event
from pfwatch.maillog.reader import LogClassifier, iter_log_events
from pfwatch.maillog.stats import LineStats
from pfwatch.sources.logfiles import open_log
from pfwatch.sources.replay import expand

__all__ = ["WorkerReader"]

BATCH = 2048
"""Events per pickled message."""


def _event_args(event: LogEvent) -> tuple[Any, tuple[Any, ...]]:
    return make_log_event, (
        event.at, event.kind, event.program, event.instance, event.service, event.daemon,
        event.pid, event.fields, event.source, event.line_no, event.position,
    )  # fmt: skip


def _child(paths: list[str], options: dict[str, Any], out: Connection) -> None:
    """The worker: classify everything, send batches, then the statistics."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {LogEvent: _event_args}

    def send(message: tuple[str, Any]) -> None:
        buffer.seek(0)
        buffer.truncate()
        pickler.clear_memo()
        pickler.dump(message)
        out.send_bytes(buffer.getbuffer())

    try:
        classifier = LogClassifier(**options)
        batch: list[LogEvent] = []
        for event in iter_log_events(paths, classifier):
            batch.append(event)
            if len(batch) >= BATCH:
                send(("events", batch))
                batch = []
        send(("events", batch))
        send(("stats", classifier.stats))
    except Exception as exc:  # every failure must reach the parent
        send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        out.close()


class WorkerReader:
    """The LogEvents of ``paths``, classified in a child process; then its statistics."""

    def __init__(self, paths: Sequence[str], **options: Any) -> None:
        self._paths = list(paths)
        self._options = options
        self._stats: LineStats | None = None
        for name in expand(self._paths):  # unreadable paths fail here, clearly
            open_log(name).close()

    @property
    def stats(self) -> LineStats:
        """The classifier's statistics (after every event was consumed)."""
        if self._stats is None:
            raise RuntimeError("WorkerReader.stats before the last event was read")
        return self._stats

    def events(self) -> Iterator[LogEvent]:
        """Start the child and yield its events in file order."""
        context = multiprocessing.get_context("fork")
        incoming, outgoing = context.Pipe(duplex=False)
        child = context.Process(
            target=_child, args=(self._paths, self._options, outgoing), daemon=True
        )
        child.start()
        outgoing.close()
        try:
            while True:
                try:
                    # our own child wrote it, from the files being read
                    kind, payload = pickle.loads(incoming.recv_bytes())  # noqa: S301
                except EOFError:
                    raise SourceUnavailable(
                        self._paths[0], "the log reader process ended early"
                    ) from None
                if kind == "events":
                    yield from payload
                elif kind == "stats":
                    self._stats = payload
                    return
                else:
                    raise SourceUnavailable(self._paths[0], f"log reader failed: {payload}")
        finally:
            incoming.close()
            if child.is_alive():
                child.terminate()
            with contextlib.suppress(Exception):
                child.join(5)
