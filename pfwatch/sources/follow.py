"""The log follower: ``tail -F`` that survives rotation, truncation and its own crashes.

Inputs: the path of a log file that may not exist yet, and optionally the
:class:`FilePosition` of the last line the caller committed. Outputs: :class:`Line`
objects (raw bytes, never decoded here), each carrying the position *after* it; the caller
stores the position of the last line it processed in the same transaction as that line's
effects, and a follower built from that position delivers the next line: exactly once.
Errors: none raised while following; unreadable or vanished files become :meth:`notices`.

Behaviour, in the order a poll applies it:

- Rotated segments found when resuming (``NAME.1``, ``NAME.2.gz``, ``NAME.20261122-004400``,
  ...) are read to their end first, oldest first, from the saved offset on; then the live
  file from 0. Every file of that plan is opened at once, so later renames cannot race it.
- The live file is read with ``pread``; after each read the first bytes and the bytes
  before the previous offset are read again: if they changed, the file was truncated
  (``copytruncate``) and possibly regrew past the old offset. The follower then looks for
  the copy (``NAME.1``) by content, reads the rest of its lines from there, and restarts
  the live file at 0.
- At the end of the live file it compares the path's (device, inode) with its open file.
  A missing path is waited for (the old descriptor stays open and is still read). A new
  file means rotation: the old file is drained to its end, and once it has been quiet for
  ``rotate_wait`` seconds (default 1 s, so a syslog daemon not yet told to reopen its file
  loses nothing) the follower switches: renamed copies are found by inode, deleted ones
  are not needed, compressed ones by content.
- Partial last line: only complete lines are delivered. An unterminated tail is delivered,
  flagged ``unterminated``, when nothing was appended to its file for ``partial_timeout``
  seconds (default 5 s; a rotated file read on catch-up is given the same time, or 1 s,
  since it may be a copy still being written), or when the live file is rotated away. A
  writer pausing mid-line for longer than that has its line delivered in two pieces;
  syslog daemons and postlogd write whole lines at once, so this only happens to a writer
  that died mid-line. A first line is not read at all before its newline: a file is
  identified by the bytes read from it, and a fragment such as ``Nov 22 0`` is not enough.
- A line longer than ``max_line_bytes`` is delivered cut to that length, flagged
  ``truncated``; the rest of it is skipped without being buffered.
- Whenever the follower moves on from a file (rotated segments read, old file rotated
  away, a live file that was empty when opened now has content, the path reappearing),
  it lists the segments again after the file of the last delivered line: a copytruncate
  or rename may have produced files meanwhile (:mod:`pfwatch.sources.history`). Rotated
  files already read are skipped, or read on if they grew (a copy still being written).
  The live file is opened, and its first bytes kept, *before* each listing, so a
  rotation finishing in between shows either in the listing or as a truncation.

Limits, inherent in identifying files by content: a file truncated and rewritten with the
same first lines and the same bytes before the offset is taken for the same file. Lines
written between logrotate's copy and its truncation are lost (logrotate documents this
for ``copytruncate``).
"""

from __future__ import annotations

import errno
import lzma
import os
import stat
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pfwatch.sources.history import ReadFiles
from pfwatch.sources.lines import Line, LineReader
from pfwatch.sources.position import HEAD_BYTES, MARKER_BYTES, FilePosition
from pfwatch.sources.rotation import Plan, SegmentFile, locate

__all__ = ["DEFAULT_POLL_INTERVAL", "Follower", "Line"]


def complete_lines(head: bytes) -> bytes:
    """``head`` up to its last newline: the bytes that identify a file (see LineReader)."""
    return head[: head.rfind(b"\n") + 1]


DEFAULT_MAX_LINE_BYTES = 64 * 1024
DEFAULT_POLL_INTERVAL = 0.25
READ_CHUNK = 256 * 1024
MAX_BATCH_BYTES = 4 * 1024 * 1024


class Follower:
    """Follows one log path; see the module documentation for the rules.

    ``position`` resumes after a committed line (a :class:`FilePosition` or its JSON);
    without one, ``start`` says where to begin in the file existing now (``"end"``: after
    its last complete line; ``"beginning"``). A file created later is always read from 0.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        position: FilePosition | str | None = None,
        *,
        start: Literal["beginning", "end"] = "end",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        partial_timeout: float | None = 5.0,
        rotate_wait: float = 1.0,
        read_chunk: int = READ_CHUNK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self.max_line_bytes = max_line_bytes
        self.partial_timeout = partial_timeout
        self.rotate_wait = rotate_wait
        self.read_chunk = read_chunk
        self._tail_wait = 1.0 if partial_timeout is None else partial_timeout
        self.behind = False  # the last poll stopped at its byte budget: poll again at once
        self._clock = clock
        self._queue: deque[LineReader] = deque()
        self._live: LineReader | None = None
        self._rotated_at: float | None = None
        self._last: Line | None = None
        self._read = ReadFiles(self.path)
        self._grew_at = clock()
        self._notices: list[str] = []
        self._last_error = ""
        self._wakeup = threading.Event()
        if isinstance(position, str):
            position = FilePosition.from_json(position)
        self._position = position
        if position is None:
            self._start_fresh(start)
        else:
            plan = locate(self.path, position)
            if not plan.found:
                self._notice(
                    f"{self.path}: saved position ({position.file} at byte {position.offset})"
                    " not found in the file or its rotated copies; reading from the beginning"
                )
            self._apply(plan)

    # -- public API ---------------------------------------------------------------------

    @property
    def position(self) -> FilePosition | None:
        """The position after the last delivered line (or the one resumed from)."""
        return self._position

    def notices(self) -> list[str]:
        """Human-readable problems met since the last call (unreadable file, lost position)."""
        found, self._notices = self._notices, []
        return found

    def poll(self, max_bytes: int = MAX_BATCH_BYTES) -> list[Line]:
        """Every complete line available now, up to about ``max_bytes`` of input."""
        now = self._clock()
        out: list[Line] = []
        budget = max_bytes
        while budget > 0:
            if self._queue:
                reader = self._queue[0]
                try:
                    got = reader.read(min(self.read_chunk, budget), False, now)
                except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
                    self._notice(
                        f"{reader.ident.file}: unreadable after byte {reader.delivered}: {exc}"
                    )
                    got = ([], 0)
                assert got is not None
                if got[1]:
                    self._emit(out, got[0])
                    budget -= got[1]
                else:
                    if reader.incomplete and now - reader.carry_at < self._tail_wait:
                        break  # a line cut off: a copy still being written? look again later
                    self._emit(out, reader.finish())
                    reader.close()
                    self._queue.popleft()
                    self._read.record(reader.position())
                    if not self._queue:
                        self._after_queue(reader)
                continue
            if self._live is None:
                if self._open_new_live(now):
                    continue
                break
            if self._live.blank and self._newer_copies(self._live):
                continue
            try:
                got = self._live.read(min(self.read_chunk, budget), True, now)
            except OSError as exc:
                self._error(exc)
                self._drop_if_replaced(self._live)
                break
            if got is None:
                self._replan(self._live, truncated=True)
                continue
            if got[1]:
                self._emit(out, got[0])
                budget -= got[1]
                self._grew_at = now
                continue
            if not self._check_rotation(now, out):
                break
        self.behind = budget <= 0
        live = self._live
        if (
            live is not None
            and not self._queue
            and self.partial_timeout is not None
            and live.incomplete
            and now - live.carry_at >= self.partial_timeout
        ):
            self._emit(out, live.finish())
        if out:
            self._position = out[-1].position
        return out

    def follow(self, stop: threading.Event) -> Iterator[Line]:
        """Blocking iteration until ``stop`` is set; waits ``poll_interval`` between polls
        (cut short by :meth:`wake`, e.g. from a watchdog handler)."""
        while not stop.is_set():
            lines = self.poll()
            yield from lines
            if not self.behind and not lines:
                self._wakeup.wait(self.poll_interval)
                self._wakeup.clear()

    def wake(self) -> None:
        """Make a waiting :meth:`follow` poll now (thread-safe)."""
        self._wakeup.set()

    def close(self) -> None:
        for reader in [*self._queue, self._live]:
            if reader is not None:
                reader.close()
        self._queue.clear()
        self._live = None

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _notice(self, message: str) -> None:
        self._notices.append(message)

    def _reader(self, seg: SegmentFile, head: bytes = b"", marker: bytes = b"") -> LineReader:
        if seg.offset == 0 and not seg.compressed:
            head = complete_lines(seg.head_at_open)  # a truncation before reading shows
        elif seg.offset and not head:
            head, marker = seg.known_head, seg.known_marker
        return LineReader(
            seg, str(self.path), head, marker, max_line=self.max_line_bytes, now=self._clock()
        )

    def _start_fresh(self, start: str) -> None:
        seg = self._open_path()
        if seg is None:
            self._read.note_existing()
            return
        if start == "beginning":
            self._live = self._reader(seg)
            return
        size = seg.size() or 0
        window = seg.pread(min(size, DEFAULT_MAX_LINE_BYTES), max(0, size - DEFAULT_MAX_LINE_BYTES))
        cut = window.rfind(b"\n")
        offset = size if cut < 0 else size - len(window) + cut + 1
        seg.offset = offset
        head = seg.pread(HEAD_BYTES, 0)
        marker = seg.pread(min(offset, MARKER_BYTES), offset - min(offset, MARKER_BYTES))
        self._live = self._reader(seg, head, marker)

    def _open_path(self) -> SegmentFile | None:
        try:
            seg = SegmentFile(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._error(exc)
            return None
        if stat.S_ISDIR(os.fstat(seg.fd).st_mode):
            seg.close()
            self._error(IsADirectoryError(errno.EISDIR, "is a directory"))
            return None
        return seg

    def _open_new_live(self, now: float) -> bool:
        anchor = self._anchor()
        if anchor is not None:  # files may have come and gone since the last line
            if not self.path.exists():
                return False
            plan = self._read.plan_after(anchor)
            if plan.live is None and not plan.queue:
                return False
            self._apply(plan)
        else:
            seg = self._open_path()
            if seg is None:
                return False
            self._live = self._reader(seg)
            self._queue.extend(self._reader(new) for new in self._read.new_since_noted())
        self._grew_at = now
        self._last_error = ""
        return True

    def _error(self, exc: OSError) -> None:
        message = f"{self.path}: cannot read: {exc.strerror or exc}"
        if message != self._last_error:
            self._notice(message)
            self._last_error = message

    def _drop_if_replaced(self, live: LineReader) -> None:
        """After a read error: give up the open file if the path now names another one."""
        try:
            st = self.path.stat()
        except OSError:
            return
        if (st.st_dev, st.st_ino) != (live.ident.dev, live.ident.ino):
            live.close()
            self._live = None

    def _apply(self, plan: Plan) -> None:
        if plan.queue:
            first, *newer = plan.queue
            self._queue.append(self._reader(first, plan.head, plan.marker))
            self._queue.extend(self._reader(seg) for seg in newer)
            self._live = self._reader(plan.live) if plan.live is not None else None
        elif plan.live is not None:
            self._live = self._reader(plan.live, plan.head, plan.marker)
        else:
            self._live = None

    def _emit(self, out: list[Line], lines: list[Line]) -> None:
        if lines:
            out += lines
            self._last = lines[-1]

    def _anchor(self) -> FilePosition | None:
        """The position after the last line delivered (or resumed from): the file that
        everything not yet read comes after."""
        return self._last.position if self._last is not None else self._position

    def _replan(self, old: LineReader, truncated: bool) -> None:
        """The live file is done with (rotated) or no longer what was read (truncated):
        find where its lines continue and what comes after it."""
        old.close()
        self._live = None
        self._rotated_at = None
        anchor = self._anchor()
        if old.delivered == 0 and anchor is not None:
            # nothing was delivered from the old file: continue after the last line
            self._apply(self._read.plan_after(anchor))
            return
        if not truncated:
            self._apply(locate(self.path, old.position()))
            return
        plan = locate(self.path, old.identity())
        if not plan.found and old.delivered > 0:
            plan.close()  # the copy was made before our last read: match what was delivered
            plan = locate(self.path, old.position())
        if not plan.found:
            self._notice(f"{self.path}: truncated without a copy; reading it from the start")
        self._apply(plan)

    def _after_queue(self, last: LineReader) -> None:
        """The rotated segments are read. Look again before reading the live file: a
        copytruncate may have made a new copy of it meanwhile."""
        if self._live is not None:
            self._live.close()
        self._apply(self._read.plan_after(self._anchor() or last.position()))

    def _newer_copies(self, live: LineReader) -> bool:
        """The live file was empty when opened and now has lines: if it was copied and
        truncated in between, the copy holds older lines. Queue them; True if any."""
        anchor = self._anchor()
        if anchor is None or not live.seg.size():
            return False
        # first bytes now, before listing: a copytruncate after this shows on reading
        live.head = complete_lines(live.seg.pread(HEAD_BYTES, 0))
        plan = self._read.plan_after(anchor)
        if not plan.queue and not (plan.live is not None and plan.live.offset):
            plan.close()
            return False
        live.close()
        self._apply(plan)
        return True

    def _check_rotation(self, now: float, out: list[Line]) -> bool:
        """At the end of the live file: False if it is still the file to follow; True
        once the follower switched to what comes next (the old file's last line, if
        unterminated, is added to ``out``)."""
        live = self._live
        assert live is not None
        size = live.seg.size()
        if size is not None and size < max(live.seg.offset, len(live.head)):
            self._replan(live, truncated=True)
            return True
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False  # removed or renamed, nothing new yet: keep reading the old file
        except OSError as exc:
            self._error(exc)
            return False
        if (st.st_dev, st.st_ino) == (live.ident.dev, live.ident.ino):
            self._rotated_at = None
            return False
        if self._rotated_at is None:
            self._rotated_at = now
        if now - max(self._rotated_at, self._grew_at) < self.rotate_wait:
            return False
        self._emit(out, live.finish())
        self._replan(live, truncated=False)
        return True
