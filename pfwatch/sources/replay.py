"""Reading logs once, for ``pfwatch explain``: files, directories of rotated files, stdin.

Inputs: path names (a file, possibly compressed; a directory; ``-`` for stdin). Outputs:
:func:`replay_order`, the files of a directory grouped per log and each group in the
order it was written (rotated segments oldest first, the live file last; the naming
schemes of :mod:`pfwatch.sources.rotation`, including ``postfix logrotate``'s
``NAME.%Y%m%d-%H%M%S[.gz]``), and :class:`ReplaySource`, raw lines with their file and
line number through the :class:`pfwatch.sources.base.Source` protocol. Errors: a path
that cannot be opened raises :class:`pfwatch.errors.SourceUnavailable`; a file that
breaks off (corrupt compression, I/O error) becomes a notice, and reading goes on.

Line splitting and decompression are delegated to :mod:`pfwatch.sources.logfiles`, whose
block reader the fast replay path of :mod:`pfwatch.maillog.reader` uses as well.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, NamedTuple

from pfwatch.sources.logfiles import open_log, read_blocks
from pfwatch.sources.rotation import rotated_segments

DEFAULT_MAX_LINE_BYTES = 64 * 1024

_ROTATED_TAIL = re.compile(
    r"(?:[.-](?:19|20)\d{6}(?:[-_T]?\d{1,10})?|\.\d{1,6})(?:\.(?:gz|bz2|xz))?$"
)


def replay_order(directory: Path) -> list[Path]:
    """The regular files of ``directory``, grouped by the log they belong to (groups in
    name order), each group oldest first: rotated segments, then the live file."""
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    bases = sorted({_ROTATED_TAIL.sub("", p.name) or p.name for p in files})
    ordered: list[Path] = []
    for base in bases:
        live = directory / base
        ordered += [segment.path for segment in rotated_segments(live)]
        if live.is_file():
            ordered.append(live)
    seen = set(ordered)
    return ordered + [p for p in files if p not in seen]  # e.g. X.1 and X.1.gz both kept


def expand(paths: Sequence[str]) -> Iterator[str]:
    """Directories become their files in :func:`replay_order`; other names stay."""
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            yield from (str(p) for p in replay_order(path))
        else:
            yield name


class ReplayLine(NamedTuple):
    """One line read once: its bytes (no newline), file name and 1-based line number."""

    data: bytes
    source: str
    line_no: int
    truncated: bool = False

    @property
    def checkpoint(self) -> str:
        """``FILE:LINE``: replays are not resumed, the token names the line for reports."""
        return f"{self.source}:{self.line_no}"


class ReplaySource:
    """Every line of the inputs, once, in order; :attr:`done` when all are read."""

    def __init__(
        self, paths: Sequence[str], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self._names = iter(expand(paths))
        self._blocks: Iterator[tuple[bool, bytes]] | None = None
        self._handle: IO[bytes] | None = None
        self._source = ""
        self._line_no = 0
        self._notices: list[str] = []
        self.done = False

    def poll(self) -> list[ReplayLine]:
        """The lines of the next block (about 1 MiB); an empty list once :attr:`done`."""
        while not self.done:
            if self._blocks is None and not self._next_file():
                self.done = True
                break
            assert self._blocks is not None
            try:
                whole, block = next(self._blocks)
            except StopIteration:
                self._close_file()
                continue
            except (OSError, EOFError, zlib.error) as exc:
                self._notices.append(
                    f"{self._source}: unreadable after line {self._line_no}: {exc}"
                )
                self._close_file()
                continue
            return self._lines(whole, block)
        return []

    def follow(self, stop: threading.Event) -> Iterator[ReplayLine]:
        """All lines, stopping early if ``stop`` is set."""
        while not stop.is_set() and not self.done:
            yield from self.poll()

    def notices(self) -> list[str]:
        found, self._notices = self._notices, []
        return found

    def close(self) -> None:
        self._close_file()
        self.done = True

    def _lines(self, whole: bool, block: bytes) -> list[ReplayLine]:
        source, first = self._source, self._line_no + 1
        if not whole:  # the head of an over-long line, cut here
            self._line_no += 1
            return [ReplayLine(block[: self.max_line_bytes], source, first, True)]
        texts = block.split(b"\n")
        texts.pop()  # a block ends with a newline
        self._line_no += len(texts)
        cap = self.max_line_bytes
        return [
            ReplayLine(text, source, n)
            if len(text) <= cap
            else ReplayLine(text[:cap], source, n, True)
            for n, text in enumerate(texts, start=first)
        ]

    def _next_file(self) -> bool:
        name = next(self._names, None)
        if name is None:
            return False
        self._handle = open_log(name)
        self._source = "<stdin>" if name == "-" else name
        self._line_no = 0
        self._blocks = read_blocks(self._handle, self.max_line_bytes)
        return True

    def _close_file(self) -> None:
        if self._handle is not None and self._source != "<stdin>":
            self._handle.close()
        self._handle = None
        self._blocks = None
