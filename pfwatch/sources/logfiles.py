"""Open maillog files for replay: gzip, stdin, bounded blocks of whole lines.

Inputs: path names (files, ``.gz`` files, ``-`` for stdin, directories of rotated files).
Outputs: binary streams and byte blocks of whole lines (directories are expanded by
:func:`pfwatch.sources.replay.expand`). Errors: an
unreadable path raises :class:`~pfwatch.errors.SourceUnavailable`; I/O errors while
reading propagate to the caller, which records them.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pfwatch.errors import SourceUnavailable

BLOCK_BYTES = 1 << 20


def open_log(name: str) -> IO[bytes]:
    """A binary stream of the file (gunzipped when it starts with the gzip magic)."""
    if name == "-":
        return sys.stdin.buffer
    try:
        handle = Path(name).open("rb")  # noqa: SIM115 - the caller closes it
        if handle.peek(2)[:2] != b"\x1f\x8b":
            return handle
        handle.close()  # gzip.open owns its file: closing the stream closes the file too
        return gzip.open(name, "rb")  # type: ignore[return-value]
    except OSError as exc:
        raise SourceUnavailable(name, exc.strerror or str(exc)) from exc


def read_blocks(handle: IO[bytes], max_line: int) -> Iterator[tuple[bool, bytes]]:
    """``(True, block)`` of whole lines, or ``(False, head)`` for an over-long line.

    A block ends with a newline (one is added after a last line that lacks it). A line
    longer than ``max_line`` yields its first ``max_line + 1`` bytes alone; the rest of it
    is skipped.
    """
    rest = b""
    skipping = False
    while True:
        chunk = handle.read(BLOCK_BYTES)
        if not chunk:
            if rest:
                yield True, rest + b"\n"
            return
        if skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                continue
            chunk = chunk[newline + 1 :]
            skipping = False
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield True, data[:cut]
        if len(rest) > max_line:
            yield False, rest[: max_line + 1]
            rest = b""
            skipping = True
