"""One pfwatch per state directory: an advisory ``flock`` on ``<state-dir>/pfwatch.lock``.

Inputs: the state directory. Outputs: a held lock (released by :meth:`DirectoryLock.release`
or by the kernel when the process dies, even by ``kill -9``). Errors:
:class:`pfwatch.errors.StateError` when another process holds it (naming its pid) or the
file cannot be created.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from pfwatch.errors import StateError

LOCK_NAME = "pfwatch.lock"


class DirectoryLock:
    """An exclusive, non-blocking lock on a state directory."""

    def __init__(self, directory: Path | str) -> None:
        self.path = Path(directory) / LOCK_NAME
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot create lock file: {exc.strerror}") from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self.path.read_text(encoding="ascii", errors="replace").strip() or "unknown"
            os.close(self._fd)
            self._fd = None
            raise StateError(
                f"{self.path.parent}: another pfwatch (pid {holder}) uses this state directory"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode("ascii"))

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
