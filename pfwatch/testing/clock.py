"""Test helper: a clock that moves only when told to.

Satisfies :class:`pfwatch.service.clock.Clock` (``now``), and its bound ``now`` serves
where a component takes a plain time function (the outbox's retry clock). Inputs: a
start time. Outputs: POSIX (or monotonic) seconds. Errors: none.
"""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def set(self, value: float) -> None:
        self._now = value
