"""Find where the lines of a given moment begin in a time-ordered maillog file.

``pfwatch check`` needs only the lines written since the oldest running Postfix process
started; a system maillog can hold weeks before that. :func:`start_offset` bisects the
file on line timestamps (a few 64 KB reads) and :func:`lines_before` counts the lines
skipped, so that line numbers stay those of the whole file. Syslog writes lines nearly in
time order; the caller asks for a moment somewhat earlier than it needs
(:data:`OUT_OF_ORDER_SLACK`) and drops what it does not need after reading.
Inputs: a seekable binary handle, its size, a moment, and a function that dates one raw
line (None for lines without a readable timestamp). Outputs: byte offsets and line counts.
Errors: I/O errors propagate to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

__all__ = ["OUT_OF_ORDER_SLACK", "lines_before", "start_offset"]

OUT_OF_ORDER_SLACK = 300.0
"""Seconds to start before the moment asked for: lines of busy syslog daemons, and of
several hosts in one file, arrive out of order by a few seconds."""
PROBE_BYTES = 64 * 1024
COUNT_BYTES = 1 << 20

LineTime = Callable[[bytes], "float | None"]


def start_offset(handle: IO[bytes], size: int, not_before: float, line_time: LineTime) -> int:
    """Offset of a line start at or before the first line dated ``not_before`` or later.

    Every line from the returned offset on is read by the caller, so a wrong guess costs
    only time: where nothing between two probes can be dated the search moves left.
    """
    low, high = 0, size
    while high - low > PROBE_BYTES:
        middle = (low + high) // 2
        found = _first_dated_line(handle, middle, high, line_time)
        if found is not None and found[1] < not_before:
            low = found[0]
        else:
            high = middle
    return low


def _first_dated_line(
    handle: IO[bytes], position: int, end: int, line_time: LineTime
) -> tuple[int, float] | None:
    """(offset, time) of the first whole, dated line starting after ``position``."""
    handle.seek(position)
    data = handle.read(min(PROBE_BYTES, end - position))
    start = data.find(b"\n") + 1
    if start == 0:
        return None
    while True:
        newline = data.find(b"\n", start)
        if newline < 0:
            return None
        at = line_time(data[start:newline])
        if at is not None:
            return position + start, at
        start = newline + 1


def lines_before(handle: IO[bytes], offset: int) -> int:
    """Newlines in the first ``offset`` bytes (the handle is left at ``offset``)."""
    handle.seek(0)
    count = 0
    left = offset
    while left > 0:
        chunk = handle.read(min(COUNT_BYTES, left))
        if not chunk:
            break
        count += chunk.count(b"\n")
        left -= len(chunk)
    handle.seek(offset)
    return count
