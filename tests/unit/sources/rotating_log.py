"""A log writer for follower tests: numbered lines, and every way logs get rotated.

Lines look like ``00000042 3fa9c2e1 <filler>`` so a test can compare what a follower
delivered with what was written, in order, by sequence number. The random token stands
for what makes real log lines unique (time stamps, pids, queue ids): a follower detects
``copytruncate`` by comparing the bytes it has read with what the file holds now.
Rotations mimic logrotate (numbered ``.1``/``.2.gz`` with or without ``delaycompress``,
``copytruncate``, ``nocreate``) and ``postfix logrotate`` (``NAME.%Y%m%d-%H%M%S``,
compressed after a pause).
"""

from __future__ import annotations

import gzip
import os
import random
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

_NUMBERED = re.compile(r"\.(\d+)(\.gz)?$")


class RotatingLog:
    """Writes numbered lines to ``path`` and rotates it; remembers everything written."""

    def __init__(self, path: Path, rng: random.Random | None = None, retention: int = 40) -> None:
        self.path = path
        self.rng = rng or random.Random(0)
        self.retention = retention
        self.written: list[bytes] = []
        self._stamp = datetime(2026, 11, 22, 0, 0, 0, tzinfo=UTC)
        self._pending_compress: list[Path] = []
        self._rest: bytes | None = None  # the unwritten end of a line begun by begin_line

    def line(self, seq: int) -> bytes:
        filler = b"x" * self.rng.randrange(0, 120)
        return b"%08d %08x %s" % (seq, self.rng.getrandbits(32), filler)

    def begin_line(self) -> None:
        """Write the first part of the next line only; the next write completes it."""
        self.finish_line()
        text = self.line(len(self.written))
        cut = self.rng.randrange(18, len(text) + 1)  # past the token (see the module doc)
        with self.path.open("ab") as out:
            out.write(text[:cut])
        self.written.append(text)
        self._rest = text[cut:] + b"\n"

    def finish_line(self) -> None:
        if self._rest is not None:
            with self.path.open("ab") as out:
                out.write(self._rest)
            self._rest = None

    def append(self, count: int = 1, split: bool = False) -> list[bytes]:
        """Append ``count`` complete lines (``split``: each in two writes, the first one
        ending mid-line, so a reader may see the partial line in between)."""
        self.finish_line()
        new = [self.line(len(self.written) + i) for i in range(count)]
        with self.path.open("ab") as out:
            for text in new:
                if split and len(text) > 4:
                    out.write(text[:4])
                    out.flush()
                    out.write(text[4:] + b"\n")
                else:
                    out.write(text + b"\n")
        self.written += new
        return new

    def append_partial(self, text: bytes) -> None:
        """Write bytes without a newline (the test completes or abandons the line)."""
        with self.path.open("ab") as out:
            out.write(text)

    # -- logrotate, numbered ------------------------------------------------------------

    def _shift(self) -> None:
        numbered = []
        for entry in self.path.parent.iterdir():
            m = _NUMBERED.search(entry.name)
            if m and entry.name == self.path.name + m.group(0):
                numbered.append((int(m.group(1)), entry, m.group(2) or ""))
        for number, entry, gz in sorted(numbered, reverse=True):
            if number >= self.retention:
                entry.unlink()
            else:
                entry.rename(self.path.with_name(f"{self.path.name}.{number + 1}{gz}"))

    def rotate_rename(self, create: bool = True, compress: bool = False) -> None:
        """logrotate's default: ``NAME`` becomes ``NAME.1``; with ``compress`` (and
        ``delaycompress``) ``NAME.2`` becomes ``NAME.2.gz``."""
        self.finish_line()
        self._shift()
        if self.path.exists():
            self.path.rename(self.path.with_name(self.path.name + ".1"))
        if compress:
            second = self.path.with_name(self.path.name + ".2")
            if second.exists():
                gzip_file(second)
        if create:
            self.path.touch()

    def copytruncate(self) -> None:
        """logrotate ``copytruncate``: copy to ``NAME.1``, then truncate in place."""
        self.finish_line()
        self._shift()
        shutil.copyfile(self.path, self.path.with_name(self.path.name + ".1"))
        with self.path.open("r+b") as live:
            live.truncate(0)

    def delete_recreate(self) -> None:
        self.path.unlink()
        self.path.touch()

    # -- postfix logrotate --------------------------------------------------------------

    def postfix_logrotate(self) -> None:
        """``mv NAME NAME.%Y%m%d-%H%M%S``; the compressor runs later
        (:meth:`compress_pending`); postlogd creates ``NAME`` on its next write."""
        self.finish_line()
        self._stamp += timedelta(seconds=self.rng.randrange(1, 5000))
        target = self.path.with_name(f"{self.path.name}.{self._stamp:%Y%m%d-%H%M%S}")
        self.path.rename(target)
        self._pending_compress.append(target)

    def compress_pending(self) -> None:
        for target in self._pending_compress:
            gzip_file(target)
        self._pending_compress.clear()


def gzip_file(path: Path) -> None:
    """Like gzip(1): write ``path.gz``, then remove ``path``."""
    packed = path.with_name(path.name + ".gz")
    with path.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(path)
