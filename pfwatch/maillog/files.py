"""Open maillog files for replay: rotation order, gzip, stdin, bounded blocks.

Inputs: path names (files, ``.gz`` files, ``-`` for stdin, directories of rotated files).
Outputs: paths in chronological order and byte blocks of whole lines. Errors: an
unreadable path raises :class:`~pfwatch.errors.SourceUnavailable`; I/O errors while
reading propagate to the caller, which records them.
"""

from __future__ import annotations

import gzip
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from pfwatch.errors import SourceUnavailable

BLOCK_BYTES = 1 << 20
# x.1, x.2.gz (logrotate), x-20240101 (dateext), x.20240101-123000.gz (postfix logrotate)
_ROTATED = re.compile(
    r"^(?P<base>.+?)(?:\.(?P<num>\d{1,4})|-(?P<date>\d{8,10})|\.(?P<stamp>\d{8}-\d{6}))?"
    r"(?:\.gz)?$"
)


def rotation_order(paths: Sequence[Path]) -> list[Path]:
    """Rotated files oldest first: ``x.3.gz, x.2.gz, x.1, x``, ``x-20240101, x`` and
    ``x.20240101-004400.gz, x`` (``postfix logrotate``)."""

    def key(path: Path) -> tuple[str, int, str]:
        match = _ROTATED.match(path.name)
        if match is None:
            return (path.name, 0, path.name)
        if match.group("num") is not None:
            return (match.group("base"), -int(match.group("num")), path.name)
        dated = match.group("date") or match.group("stamp")
        if dated is not None:
            digits = dated.replace("-", "").ljust(14, "0")
            return (match.group("base"), -(10**15) + int(digits), path.name)
        return (match.group("base"), 0, path.name)

    return sorted(paths, key=key)


def expand_paths(paths: Sequence[str]) -> Iterator[str]:
    """The files to read: directories become their rotated files, oldest first."""
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            entries = [
                entry
                for entry in path.iterdir()
                if entry.is_file() and not entry.name.startswith(".")
            ]
            yield from (str(entry) for entry in rotation_order(entries))
        else:
            yield name


def open_log(name: str) -> IO[bytes]:
    """A binary stream of the file (gunzipped when it starts with the gzip magic)."""
    if name == "-":
        return sys.stdin.buffer
    try:
        handle = Path(name).open("rb")  # noqa: SIM115 - the caller closes it
        if handle.peek(2)[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
        return handle
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
