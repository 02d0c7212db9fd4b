"""The emission protocol of ``pfwatch watch``: commit, then write, then mark written.

Inputs: batches of findings with the source positions and engine state they lead to; a
:class:`pfwatch.store.sqlite.StateStore` (or None when none could be opened); a sink.
Outputs: every new finding handed to the sink exactly once (see docs/events.md §1.3), and
the state committed with it. Errors: none raised for state problems. When the database
cannot be written (disk full, read-only, permission denied) the outbox keeps delivering
from memory, calls ``on_state_problem`` once per outage (and ``on_state_recovered`` when a
later commit works again; it retries at most every ``retry_seconds``). While degraded,
repeats are dropped by an in-memory set of recent ids, and positions are not durable, so
a restart re-reads from the last committed position and may repeat those events (with the
same ``event_id``).

A commit costs about 0.4 ms (WAL, synchronous=NORMAL, measured on the CI machine), so the
caller SHOULD deliver per chunk read (e.g. up to 1000 lines or 50 ms), not per line, and
call :meth:`pfwatch.store.sqlite.StateStore.prune_emitted` now and then (daily).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pfwatch.errors import StateError
from pfwatch.events import Finding, event_id_for
from pfwatch.sinks.base import Sink
from pfwatch.store.sqlite import StateStore

RECENT_IDS = 100_000


class Outbox:
    """Delivers findings through ``store`` to ``sink``; survives a broken store."""

    def __init__(
        self,
        store: StateStore | None,
        sink: Sink,
        *,
        on_state_problem: Callable[[StateError], None] = lambda _exc: None,
        on_state_recovered: Callable[[], None] = lambda: None,
        retry_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._sink = sink
        self._on_problem = on_state_problem
        self._on_recovered = on_state_recovered
        self._retry = retry_seconds
        self._clock = clock
        self._failing_since: float | None = None if store is not None else clock()
        self._last_attempt = float("-inf")
        self._recent: OrderedDict[str, None] = OrderedDict()

    @property
    def state_ok(self) -> bool:
        """False while the state cannot be committed (for metrics and /healthz)."""
        return self._failing_since is None

    def replay_pending(self) -> int:
        """At start-up: write findings committed before a crash but not marked written."""
        if self.store is None:
            return 0
        try:
            pending = self.store.unemitted()
        except StateError as exc:
            self._fail(exc)
            return 0
        self._write(pending)
        return len(pending)

    def deliver(
        self,
        findings: Sequence[Finding],
        positions: Mapping[str, Any] | None = None,
        engine_state: Any = None,
        *,
        snapshot: tuple[float, str, str] | None = None,
    ) -> list[str]:
        """Commit and write one batch; returns the event ids written."""
        if self.store is not None and self._should_try():
            self._last_attempt = self._clock()
            try:
                result = self.store.commit(findings, positions, engine_state, snapshot=snapshot)
            except StateError as exc:
                self._fail(exc)
            else:
                if self._failing_since is not None:
                    self._failing_since = None
                    self._on_recovered()
                new = [item for item in result.new if item[0] not in self._recent]
                seen = [event_id for event_id, _ in result.new if event_id in self._recent]
                return self._write(new, also_mark=seen)
        fresh = [(event_id_for(f), f) for f in findings]
        return self._write([item for item in fresh if item[0] not in self._recent])

    def _write(
        self, items: Sequence[tuple[str, Finding]], also_mark: Sequence[str] = ()
    ) -> list[str]:
        written: list[str] = []
        for event_id, finding in items:
            self._sink.emit(finding)
            written.append(event_id)
            self._remember(event_id)
        if (written or also_mark) and self.store is not None and self._failing_since is None:
            try:
                self.store.mark_emitted([*written, *also_mark])
            except StateError as exc:
                self._fail(exc)
        return written

    def _should_try(self) -> bool:
        return self._failing_since is None or self._clock() - self._last_attempt >= self._retry

    def _fail(self, exc: StateError) -> None:
        if self._failing_since is None:
            self._failing_since = self._clock()
            self._on_problem(exc)

    def _remember(self, event_id: str) -> None:
        self._recent[event_id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)


def state_error_finding(exc: StateError, at: float, path: str | None = None) -> Finding:
    """The ``state_error`` event for an unusable state database (docs/events.md §2.3)."""
    return Finding("state_error", at, "observed", {"path": path, "message": str(exc)})


def state_reset_finding(store: StateStore, at: float) -> Finding | None:
    """The ``state_reset`` event when ``store`` replaced a corrupt database, else None."""
    if store.recovered_from is None:
        return None
    return Finding(
        "state_reset",
        at,
        "observed",
        {"path": str(store.path), "kept_as": str(store.recovered_from)},
    )
