"""Splitting one open log file into lines, keeping what a resume position needs.

Inputs: a :class:`pfwatch.sources.rotation.SegmentFile` positioned at an offset, the
file's leading bytes and the bytes before the offset. Outputs: :class:`Line` objects, each
carrying the position *after* it (computed only when asked for, since most are never
committed). Errors: ``OSError`` and decompression errors from reading propagate to the
follower, which turns them into notices.

Only complete lines are delivered by :meth:`LineReader.read`; :meth:`LineReader.finish`
delivers an unterminated tail, flagged. A line longer than ``max_line`` is cut to that
length and flagged ``truncated``; the rest of it is skipped, never buffered.
"""

from __future__ import annotations

from typing import NamedTuple

from pfwatch.sources.position import (
    HEAD_BYTES,
    MARKER_BYTES,
    FilePosition,
    fingerprint,
    position_after,
)
from pfwatch.sources.rotation import SegmentFile


class Ident(NamedTuple):
    """Which file a line came from: the followed path and the file read, by inode."""

    path: str
    file: str
    dev: int
    ino: int


class Line(NamedTuple):
    """One delivered line: ``data`` without its newline, and where it ended in ``file``.

    A tuple, because millions are made when catching up and a tuple is the cheapest
    immutable record in Python. ``head`` and ``marker`` are what :attr:`position` needs.
    """

    data: bytes
    ident: Ident
    offset: int
    head: bytes
    marker: bytes
    truncated: bool = False
    unterminated: bool = False

    @property
    def file(self) -> str:
        """The file the line was read from: the live path or a rotated segment."""
        return self.ident.file

    @property
    def position(self) -> FilePosition:
        """The position just after this line: commit it with the line's effects."""
        path, file, dev, ino = self.ident
        return position_after(
            path=path, file=file, dev=dev, ino=ino, offset=self.offset, head=self.head,
            marker=self.marker,
        )  # fmt: skip

    @property
    def checkpoint(self) -> str:
        """:attr:`position` as the opaque JSON token of :class:`pfwatch.events.LogEvent`."""
        return self.position.to_json()


class LineReader:
    """Splits one open file into lines, remembering what a position needs."""

    def __init__(
        self, seg: SegmentFile, path: str, head: bytes, marker: bytes, *, max_line: int, now: float
    ) -> None:
        self.seg = seg
        self.ident = Ident(path, seg.name, seg.dev, seg.ino)
        self.head = head[:HEAD_BYTES]  # the file's first bytes, at least up to the offset
        self.tail = marker  # the bytes just before seg.offset
        self.delivered = seg.offset
        self.delivered_marker = marker
        self.max_line = max_line
        self.carry = b""  # an incomplete line (at most max_line bytes of it)
        self.skipping = False  # the incomplete line is too long: drop its further bytes
        self.carry_at = now
        self.waiting = 0  # size of a first line still incomplete, left unread (see read)

    def identity(self) -> FilePosition:
        """Like :meth:`position`, but demanding every leading byte this reader has seen:
        after a truncation, only the copy made of *this* file matches it."""
        pos = self.position()
        return FilePosition(
            pos.path, pos.file, pos.dev, pos.ino, pos.offset, len(self.head),
            fingerprint(self.head), pos.marker_len, pos.marker_hash,
        )  # fmt: skip

    def position(self) -> FilePosition:
        return position_after(
            path=self.ident.path, file=self.ident.file, dev=self.ident.dev, ino=self.ident.ino,
            offset=self.delivered, head=self.head, marker=self.delivered_marker,
        )  # fmt: skip

    def read(self, count: int, verify: bool, now: float) -> tuple[list[Line], int] | None:
        """Read up to ``count`` bytes; ``None`` if the file no longer holds what was read
        before (truncated or overwritten): then nothing of this read is used."""
        before = self.seg.offset
        data = self.seg.read(count)
        if not data:
            return [], 0
        if before == 0 and not self.seg.compressed and b"\n" not in data:
            if len(data) == count and count <= self.max_line:  # a small budget: see more
                data += self.seg.read(self.max_line + 1 - count)
            if b"\n" not in data and len(data) <= self.max_line:
                # Only part of a first line: leave it unread. Known bytes identify the file
                # (see _unchanged); a fragment like "Nov 22 0" would match its successor.
                self.seg.offset = 0
                if len(data) != self.waiting:
                    self.waiting, self.carry_at = len(data), now
                return [], 0
        self.waiting = 0
        if verify and (before > 0 or self.head) and not self._unchanged(before):
            return None
        if len(self.head) < HEAD_BYTES:
            start = len(self.head) - before
            self.head += data[start : start + HEAD_BYTES - len(self.head)]
        return self._split(data, before, now), len(data)

    def _unchanged(self, before: int) -> bool:
        head = self.head
        tail = self.tail
        return (
            self.seg.pread(len(head), 0) == head
            and self.seg.pread(len(tail), before - len(tail)) == tail
        )

    def _split(self, data: bytes, base: int, now: float) -> list[Line]:
        lines: list[Line] = []
        ident, head, cap, tail = self.ident, self.head, self.max_line, self.tail
        start = 0
        if self.carry or self.skipping:  # the first newline ends a line begun earlier
            nl = data.find(b"\n")
            if nl < 0:
                nl = len(data)
            else:
                end = nl + 1
                text = self.carry + data[: min(nl, cap - len(self.carry))]
                truncated = self.skipping or len(self.carry) + nl > cap
                self.carry, self.skipping = b"", False
                marker = data[end - MARKER_BYTES : end] if end >= MARKER_BYTES else (
                    tail + data[:end])[-MARKER_BYTES:]  # fmt: skip
                lines.append(Line(text, ident, base + end, head, marker, truncated))
                start = end
        stop = data.rfind(b"\n", start) + 1  # complete lines are data[start:stop]
        if stop > start:
            append = lines.append
            end = start
            for text in data[start : stop - 1].split(b"\n"):
                end += len(text) + 1
                marker = data[end - MARKER_BYTES : end] if end >= MARKER_BYTES else (
                    tail + data[:end])[-MARKER_BYTES:]  # fmt: skip
                if len(text) > cap:
                    append(Line(text[:cap], ident, base + end, head, marker, True))
                else:
                    append(Line(text, ident, base + end, head, marker))
            start = stop
        if start < len(data):
            self.carry_at = now
            if not self.skipping:
                room = cap - len(self.carry)
                self.carry += data[start : start + room]
                self.skipping = len(data) - start > room
        self.tail = (
            data[-MARKER_BYTES:] if len(data) >= MARKER_BYTES else (tail + data)[-MARKER_BYTES:]
        )
        if lines:
            last = lines[-1]
            self.delivered, self.delivered_marker = last.offset, last.marker
        return lines

    @property
    def incomplete(self) -> bool:
        """The file ends, for now, in the middle of a line."""
        return bool(self.carry or self.skipping or self.waiting)

    @property
    def blank(self) -> bool:
        """Nothing known of the file: opened empty (or with part of a first line only)
        at offset 0, and nothing read since."""
        return not self.head and self.seg.offset == 0

    def finish(self) -> list[Line]:
        """Deliver the unterminated tail, if any (the file is done with)."""
        if self.waiting and self.seg.offset == 0:
            data = self.seg.read(self.max_line)
            self.waiting = 0
            if b"\n" in data or not data:  # completed meanwhile: the next read takes it
                self.seg.offset = 0
                return []
            self.head, self.tail = data[:HEAD_BYTES], data[-MARKER_BYTES:]
            self.carry = data
        if not self.carry and not self.skipping:
            return []
        line = Line(
            self.carry, self.ident, self.seg.offset, self.head, self.tail, self.skipping, True
        )
        self.carry, self.skipping = b"", False
        self.delivered, self.delivered_marker = line.offset, line.marker
        return [line]

    def close(self) -> None:
        self.seg.close()
