"""The watch service's source of wall-clock time.

The core never asks for the time: the service reads this clock to stamp what it folds
(``Tick`` events, configuration checks, status and metrics snapshots) and tests give it
another (:class:`pfwatch.testing.clock.FakeClock`). Inputs: none. Outputs: POSIX seconds
as ``float``. Errors: none.
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
