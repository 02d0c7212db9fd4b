"""Clocks: the only place pfwatch reads the wall clock.

The core never asks for the time; sources stamp events with it and the watch loop turns
clock readings into ``Tick`` events. Tests inject :class:`FakeClock`.
Inputs: none. Outputs: POSIX seconds as ``float``. Errors: none.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time in POSIX seconds (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


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
