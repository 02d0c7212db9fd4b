"""Rotated segments of a log file: finding them, ordering them, opening them, matching them.

Inputs: the live path of a log (``/var/log/mail.log``) and a :class:`FilePosition`.
Outputs: :class:`SegmentFile` objects (an open file descriptor, optionally decompressing)
and :func:`locate`, which finds the file a saved position belongs to and returns it with
every newer segment, oldest first, all opened at once so renames cannot race the plan.
Errors: ``OSError`` from the file system (the follower turns them into notices).

Recognised rotated names, next to the live file ``NAME``:

- ``NAME.1``, ``NAME.2.gz``: logrotate's numbered scheme (``.1`` is the newest);
- ``NAME-20261122``, ``NAME-20261122.gz``, ``NAME-20261122-1763769600``: logrotate ``dateext``;
- ``NAME.20261122-004400`` and its ``.gz``: ``postfix logrotate`` with the default
  ``maillog_file_rotate_suffix = %Y%m%d-%H%M%S`` and ``maillog_file_compressor = gzip``
  (postfix-script ``logrotate)`` case: ``mv``, reload, ``sleep 1``, then compress);
- compressed with ``.gz``, ``.bz2`` or ``.xz``; when ``X`` and ``X.gz`` both exist the
  compressor is still running and only ``X`` is used.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pfwatch.sources.position import HEAD_BYTES, FilePosition

ROTATED_SUFFIX = re.compile(
    r"""^(?:
        [.-](?P<date>(?:19|20)\d{6}(?:[-_T]?\d{1,10})?)   # dateext, postfix logrotate
      | \.(?P<num>\d{1,6})                                # logrotate numbered
    )(?:\.(?P<comp>gz|bz2|xz))?$""",
    re.VERBOSE,
)

LOCATE_ATTEMPTS = 20
"""How often a listing is retried while rotations keep renaming files under it."""

_OPENERS = {"bz2": bz2.BZ2File, "xz": lzma.LZMAFile}


@dataclass(frozen=True, slots=True)
class Segment:
    """A rotated file beside the live log, as listed (not yet opened)."""

    path: Path
    compression: str | None
    family: str  # "date" or "num"
    rank: str | int  # within a family, larger is newer
    dev: int
    ino: int
    mtime_ns: int


def rotated_segments(live: Path) -> list[Segment]:
    """The rotated segments of ``live``, oldest first (the live file is not included)."""
    try:
        names = [entry.name for entry in live.parent.iterdir()]
    except OSError:
        return []
    base = live.name
    found: dict[str, Segment] = {}
    for name in names:
        if not name.startswith(base) or name == base:
            continue
        match = ROTATED_SUFFIX.match(name[len(base) :])
        if match is None:
            continue
        path = live.parent / name
        try:
            st = path.stat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        rank_key: str | int
        if match["date"] is not None:
            family, rank_key = "date", match["date"]
        else:
            family, rank_key = "num", -int(match["num"])
        stem = name[: -len(match["comp"]) - 1] if match["comp"] else name
        segment = Segment(
            path, match["comp"], family, rank_key, st.st_dev, st.st_ino, st.st_mtime_ns
        )
        if stem in found and found[stem].compression is None:
            continue  # the compressor is still at work: the plain file is the complete one
        found[stem] = segment
    segments = list(found.values())
    if len({s.family for s in segments}) == 1:
        return sorted(segments, key=lambda s: (s.rank, s.path.name))
    return sorted(segments, key=lambda s: (s.mtime_ns, s.path.name))


class SegmentFile:
    """One open segment: a plain file read with ``pread``, or a decompressing stream.

    ``offset`` counts uncompressed bytes already consumed by :meth:`read`.
    """

    def __init__(self, path: Path, compression: str | None = None) -> None:
        self.path = path
        self.name = str(path)
        self.compression = compression
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(self.fd)
        self.dev, self.ino = st.st_dev, st.st_ino
        self.offset = 0
        # the first bytes when opened: a later truncation (copytruncate) shows against them
        self.head_at_open = os.pread(self.fd, HEAD_BYTES, 0) if compression is None else b""
        self.known_head = self.known_marker = b""  # set by open_at: what a reader needs
        self._stream: io.BufferedIOBase | None = None
        self._raw: BinaryIO | None = None
        if compression is not None:
            self._raw = raw = os.fdopen(os.dup(self.fd), "rb")
            self._stream = (
                gzip.GzipFile(fileobj=raw, mode="rb")
                if compression == "gz"
                else _OPENERS[compression](raw)
            )

    @property
    def compressed(self) -> bool:
        return self._stream is not None

    def size(self) -> int | None:
        """Current size of a plain file (``None`` for compressed ones: unknown)."""
        return None if self._stream is not None else os.fstat(self.fd).st_size

    def pread(self, count: int, offset: int) -> bytes:
        """Bytes at ``offset`` of a plain file (does not move :attr:`offset`)."""
        return os.pread(self.fd, count, offset)

    def leading(self, count: int) -> bytes:
        """The first ``count`` bytes (a compressed file must still be at offset 0)."""
        if self._stream is None:
            return os.pread(self.fd, count, 0)
        data = self._stream.read(count)
        self._stream.seek(0)
        return data

    def read(self, count: int) -> bytes:
        """The next ``count`` bytes at most, advancing :attr:`offset`."""
        if self._stream is None:
            data = os.pread(self.fd, count, self.offset)
        else:
            data = self._stream.read(count)
        self.offset += len(data)
        return data

    def open_at(self, pos: FilePosition) -> tuple[bytes, bytes] | None:
        """If this file is ``pos``'s file, move to ``pos.offset`` and return the file's
        leading bytes and the bytes before the offset (for later positions); else ``None``."""
        if self._stream is None:
            size = os.fstat(self.fd).st_size
            if size < pos.offset:
                return None
            head = self.pread(min(size, HEAD_BYTES), 0)
            marker = self.pread(pos.marker_len, pos.offset - pos.marker_len)
        else:
            self._stream.seek(0)
            head = self._stream.read(HEAD_BYTES)
            start = pos.offset - pos.marker_len
            if self._stream.seek(start) != start:  # emulated seek: stops at the end
                return None
            marker = self._stream.read(pos.marker_len)
            size = start + len(marker)
        if not pos.matches(head[: pos.head_len], marker, size):
            return None
        self.offset = pos.offset
        self.known_head, self.known_marker = head, marker
        return head, marker

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._raw is not None:
            self._raw.close()
        os.close(self.fd)


def _open_matching(seg: Segment, pos: FilePosition) -> tuple[SegmentFile, bytes, bytes] | None:
    try:
        file = SegmentFile(seg.path, seg.compression)
    except OSError:
        return None
    try:
        found = file.open_at(pos)
    except (OSError, EOFError, lzma.LZMAError, ValueError):  # gzip.BadGzipFile is an OSError
        found = None
    if found is None:
        file.close()
        return None
    return file, found[0], found[1]


@dataclass
class Plan:
    """Where reading resumes.

    ``queue`` holds rotated segments to read to their end, oldest first: the first one
    positioned at the saved offset, the others at 0. ``live`` is the live file, pinned by
    an open descriptor (``None`` when the path does not exist); it is read after the queue,
    from the saved offset when it is the position's file, else from 0. ``head``/``marker``
    describe the position's file at its offset. ``found`` is False when no file matched
    (rotated away and deleted, or truncated without a copy): the live file starts at 0.

    The live file is opened before the directory is listed, and its first bytes are kept
    from that moment (:attr:`SegmentFile.head_at_open`): a copytruncate that finishes
    after the listing then shows as a truncation of the live file, and one that finished
    before it has its copy in the listing.
    """

    queue: list[SegmentFile]
    live: SegmentFile | None
    found: bool
    head: bytes = b""
    marker: bytes = b""

    def close(self) -> None:
        for file in [*self.queue, self.live]:
            if file is not None:
                file.close()


def locate(live: Path, pos: FilePosition) -> Plan:
    """Find ``pos``'s file among the live file and its rotated segments.

    Candidates with ``pos``'s device and inode are tried first, then the live file, then
    plain segments newest first, then compressed ones. Every file of the plan is opened
    before the directory is listed again; if a rotation ran meanwhile, the search repeats.
    """
    for attempt in range(LOCATE_ATTEMPTS):
        live_file = _open_live(live)  # before listing: see Plan
        segments = rotated_segments(live)
        plan = _plan(live_file, pos, segments)
        last = attempt == LOCATE_ATTEMPTS - 1
        if last or _consistent(segments, rotated_segments(live)):
            return plan
        plan.close()
        time.sleep(0.001 * attempt)  # a rotation is renaming files: let it finish
    raise AssertionError("unreachable")


def _consistent(before: list[Segment], after: list[Segment]) -> bool:
    """Two listings agree, and no file was seen under two names (a rename in between)."""
    identities = _identities(before)
    return identities == _identities(after) and len({i[1:] for i in identities}) == len(identities)


def _open_live(live: Path) -> SegmentFile | None:
    try:
        return SegmentFile(live)
    except OSError:
        return None


def _identities(segments: list[Segment]) -> list[tuple[Path, int, int]]:
    return [(s.path, s.dev, s.ino) for s in segments]


def _plan(live_file: SegmentFile | None, pos: FilePosition, segments: list[Segment]) -> Plan:
    same = (pos.dev, pos.ino)
    newest_first = list(reversed(range(len(segments))))
    order = [i for i in newest_first if (segments[i].dev, segments[i].ino) == same]
    if live_file is not None:
        order.insert(0 if (live_file.dev, live_file.ino) == same else len(order), -1)
    order += [i for i in newest_first if segments[i].compression is None and i not in order]
    order += [i for i in newest_first if segments[i].compression is not None and i not in order]
    for index in order:
        if index == -1:
            assert live_file is not None
            found = live_file.open_at(pos)
            if found is not None:
                return Plan([], live_file, True, *found)
            continue
        matched = _open_matching(segments[index], pos)
        if matched is None:
            continue
        first, head, marker = matched
        queue = [first]
        for seg in segments[index + 1 :]:
            try:
                queue.append(SegmentFile(seg.path, seg.compression))
            except OSError:
                continue  # deleted by retention meanwhile
        if live_file is not None:
            live_file.offset = 0
        return Plan(queue, live_file, True, head, marker)
    if live_file is not None:
        live_file.offset = 0
    return Plan([], live_file, False)
