"""Reading logs once, for ``pfwatch explain``: files, directories of rotated files, stdin.

Inputs: path names (a file, possibly compressed; a directory; ``-`` for stdin). Outputs:
:func:`replay_order`, the files of a directory grouped per log and each group in the
order it was written (rotated segments oldest first, the live file last; the naming
schemes of :mod:`pfwatch.sources.rotation`, including ``postfix logrotate``'s
``NAME.%Y%m%d-%H%M%S[.gz]``), and :class:`ReplaySource`, the inputs' lines in blocks
with their file and line numbers through the :class:`pfwatch.sources.base.Source`
protocol: the one way pfwatch reads a log once (``explain``, and ``check``'s log basis,
through :func:`pfwatch.maillog.reader.iter_log_events`). Errors: a path that cannot be
opened raises :class:`pfwatch.errors.SourceUnavailable`; a file that breaks off (corrupt
compression, I/O error) becomes a notice, and reading goes on.

Decompression and cutting whole-line blocks are :mod:`pfwatch.sources.logfiles`'; a
block is one record, so the classifier keeps its block-scan fast path.
"""

from __future__ import annotations

import gzip
import re
import stat
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
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


class ReplayBlock(NamedTuple):
    """A record of the replay: a block of whole lines of one file (each ending in a
    newline, about 1 MiB), or the head of one over-long line (``whole`` False: its first
    ``max_line_bytes + 1`` bytes, the rest skipped). ``line_no`` is the number of the line
    before the block's first; the classifier takes blocks whole (its fast path)."""

    data: bytes
    source: str
    line_no: int
    whole: bool = True

    @property
    def checkpoint(self) -> str:
        """``FILE:LINE`` of the block's last line."""
        last = self.line_no + (self.data.count(b"\n") if self.whole else 1)
        return f"{self.source}:{last}"

    def lines(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[ReplayLine]:
        """The block's lines, each cut at ``max_line_bytes`` (``truncated`` then)."""
        first = self.line_no + 1
        if not self.whole:
            return [ReplayLine(self.data[:max_line_bytes], self.source, first, True)]
        texts = self.data.split(b"\n")
        texts.pop()  # a block ends with a newline
        return [
            ReplayLine(text, self.source, n)
            if len(text) <= max_line_bytes
            else ReplayLine(text[:max_line_bytes], self.source, n, True)
            for n, text in enumerate(texts, start=first)
        ]


Seek = Callable[[IO[bytes], float], int]
"""Move a plain file's handle to a line start before a time; returns the lines skipped
(the maillog reader knows the lines' times: :mod:`pfwatch.maillog.seek`)."""


class ReplaySource:
    """Every line of the inputs, once, in order, as :class:`ReplayBlock` records;
    :attr:`done` when all are read.

    ``not_before`` (with ``seek``) skips what an incremental reader does not need: a file
    last written before it (by its modification time, which logrotate and gzip keep) is
    skipped whole, and a plain seekable file is read from where ``seek`` puts it.
    ``on_open(name)`` is called for every file opened (not stdin), before its first block.
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        not_before: float | None = None,
        seek: Seek | None = None,
        on_open: Callable[[str], None] | None = None,
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self._names = iter(expand(paths))
        self._not_before = not_before
        self._seek = seek
        self._on_open = on_open
        self._blocks: Iterator[tuple[bool, bytes]] | None = None
        self._handle: IO[bytes] | None = None
        self._source = ""
        self._line_no = 0
        self._notices: list[str] = []
        self.done = False

    def poll(self) -> list[ReplayBlock]:
        """The next block (a list of one record); an empty list once :attr:`done`."""
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
                self._notices.append(f"{self._source}:{self._line_no + 1}: {exc}")
                self._close_file()
                continue
            record = ReplayBlock(block, self._source, self._line_no, whole)
            self._line_no += block.count(b"\n") if whole else 1
            return [record]
        return []

    def follow(self, stop: threading.Event) -> Iterator[ReplayBlock]:
        """All blocks, stopping early if ``stop`` is set."""
        while not stop.is_set() and not self.done:
            yield from self.poll()

    def notices(self) -> list[str]:
        """Files that broke off, as ``FILE:LINE: why`` (LINE: the first line not read)."""
        found, self._notices = self._notices, []
        return found

    def close(self) -> None:
        self._close_file()
        self.done = True

    def _next_file(self) -> bool:
        while True:
            name = next(self._names, None)
            if name is None:
                return False
            if (
                name == "-"
                or self._not_before is None
                or not _written_before(name, self._not_before)
            ):
                break
        self._handle = open_log(name)
        self._source = "<stdin>" if name == "-" else name
        self._line_no = 0
        if name != "-":
            if self._on_open is not None:
                self._on_open(name)
            if (
                self._not_before is not None
                and self._seek is not None
                and not isinstance(self._handle, gzip.GzipFile)
            ):
                self._line_no = self._seek(self._handle, self._not_before)
        self._blocks = read_blocks(self._handle, self.max_line_bytes)
        return True

    def _close_file(self) -> None:
        if self._handle is not None and self._source != "<stdin>":
            self._handle.close()
        self._handle = None
        self._blocks = None


def _written_before(name: str, moment: float) -> bool:
    """Whether every line of the regular file ``name`` precedes ``moment`` (by its
    modification time: the time of its last line)."""
    try:
        info = Path(name).stat()
    except OSError:
        return False  # open_log reports it
    return stat.S_ISREG(info.st_mode) and info.st_mtime < moment
