"""What a follower has read of the rotated files, and what follows a file it finished.

Inputs: the followed path, positions of files read to their end, and the directory as
listed by :mod:`pfwatch.sources.rotation`. Outputs: :class:`ReadFiles`, which answers
where a rotated file is to be read from (not at all, from 0, or on from where reading
stopped when it grew since) and plans what follows a finished file. Errors: file system
and decompression errors mean "read it from 0" (nothing is skipped on doubt).

Files are known by device, inode *and* content: compressors delete files, and the next
file created may get the same inode number.
"""

from __future__ import annotations

import lzma
import zlib
from pathlib import Path

from pfwatch.sources.position import (
    HEAD_BYTES,
    MARKER_BYTES,
    FilePosition,
    fingerprint,
    position_after,
)
from pfwatch.sources.rotation import Plan, SegmentFile, locate, rotated_segments

MAX_REMEMBERED = 1000


class ReadFiles:
    """The rotated files one follower has read to their end, and where they ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done: dict[tuple[int, int], FilePosition] = {}
        self._noted = False

    def record(self, end: FilePosition) -> None:
        """``end`` is where reading of a rotated file stopped (its end at that time)."""
        if len(self._done) >= MAX_REMEMBERED:
            self._done.clear()
        self._done[end.dev, end.ino] = end

    def note_existing(self) -> None:
        """Remember the rotated files there now (the follower started before its log
        existed), so that :meth:`new_since_noted` can tell which appeared later."""
        self._noted = True
        for listed in rotated_segments(self.path):
            try:
                seg = SegmentFile(listed.path, listed.compression)
            except OSError:
                continue
            try:
                size = seg.size()
                if size is None:  # compressed: known by its first bytes
                    head = marker = seg.leading(HEAD_BYTES)
                    size = len(head)
                else:
                    head = seg.head_at_open
                    marker = seg.pread(min(size, MARKER_BYTES), size - min(size, MARKER_BYTES))
                self._done[seg.dev, seg.ino] = position_after(
                    path=str(self.path), file=seg.name, dev=seg.dev, ino=seg.ino,
                    offset=size, head=head, marker=marker,
                )  # fmt: skip
            except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError):
                pass
            finally:
                seg.close()

    def new_since_noted(self) -> list[SegmentFile]:
        """Rotated files that appeared since :meth:`note_existing`, oldest first, opened
        (the log was created and rotated before the follower saw it); once only."""
        if not self._noted:
            return []
        self._noted = False
        found = []
        for listed in rotated_segments(self.path):
            try:
                seg = SegmentFile(listed.path, listed.compression)
            except OSError:
                continue
            if self.resume_point(seg) is None:
                seg.close()
            else:
                found.append(seg)
        return found

    def plan_after(self, anchor: FilePosition) -> Plan:
        """What follows the line at ``anchor`` in a file that was read to its end: that
        file again if it grew since, the newer segments not read yet, the live file."""
        plan = locate(self.path, anchor)
        if not plan.queue:
            return plan
        first, *newer = plan.queue
        keep = []
        if not first.compressed and (first.size() or 0) > first.offset:
            keep.append(first)  # e.g. a copy that was still being written
        else:
            first.close()
        for seg in newer:
            if self.resume_point(seg) is None:
                seg.close()
            else:
                keep.append(seg)
        live = plan.live
        if not keep and live is not None and live.open_at(anchor) is not None:
            # copytruncate between its copy and its truncation: the live file still holds
            # what was just read from the copy; go on after it
            return Plan([], live, True, live.known_head, live.known_marker)
        return Plan(keep, live, found=bool(keep))

    def resume_point(self, seg: SegmentFile) -> int | None:
        """Where to read ``seg`` from: 0 if it is new to this follower, the end of what
        was read if it grew since (positioned there), None if it has nothing unread.
        Inode numbers are reused as soon as a compressor deletes a file: the content
        decides, not the number."""
        done = self._done.get((seg.dev, seg.ino))
        if done is None:
            return 0
        try:
            if seg.compressed:  # compressed files do not grow: same first bytes, same file
                lead = seg.leading(done.head_len + 1)
                same = fingerprint(lead[: done.head_len]) == done.head_hash and (
                    done.head_len == HEAD_BYTES or len(lead) == done.head_len
                )
                return None if same else 0
            if seg.open_at(done) is None:
                seg.offset = 0
                return 0
            return done.offset if (seg.size() or 0) > done.offset else None
        except (OSError, EOFError, lzma.LZMAError, zlib.error):
            seg.offset = 0
            return 0
