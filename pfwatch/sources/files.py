"""Watching configuration directories: watchdog events debounced into one change.

Inputs: the directories to watch (the Postfix configuration directory and the directory
of every referenced table or file list; the caller updates the set with
:meth:`DirectoryWatcher.set_directories` when the configuration changes). Outputs: calls
``on_change(paths)`` from a background thread, once per burst, after no event came for
``quiet`` seconds (at most ``max_delay`` after the first event of the burst), with the
set of touched paths. Errors: none raised; a directory that cannot be watched (missing,
replaced, permission denied) is reported through ``on_problem(directory, message)`` and
retried every ``rescan`` seconds; when it comes back its path is reported as touched.

Directories, not files, are watched because editors, ``sed -i``, Ansible and
``postmap`` replace files by rename, and Kubernetes ConfigMap volumes swap a ``..data``
symlink (kubernetes#50345): a watch on the file itself would follow the old inode. For a
ConfigMap swap (an entry whose name starts with ``..``), every symlink in the directory
(``main.cf -> ..data/main.cf``) is reported as touched as well. Open and
close-without-write events are ignored, so reading the files back does not trigger a
change.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

Callback = Callable[[frozenset[str]], None]
ProblemCallback = Callable[[str, str], None]

IGNORED_EVENT_TYPES = frozenset({"opened", "closed_no_write"})


class DirectoryWatcher:
    """Watches directories (non-recursively) and reports debounced bursts of changes."""

    def __init__(
        self,
        directories: Iterable[Path | str],
        on_change: Callback,
        *,
        quiet: float = 0.3,
        max_delay: float = 5.0,
        rescan: float = 1.0,
        on_problem: ProblemCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_change = on_change
        self._on_problem = on_problem or (lambda _directory, _message: None)
        self._quiet = quiet
        self._max_delay = max_delay
        self._rescan = rescan
        self._clock = clock
        self._wanted: set[str] = {_absolute(d) for d in directories}
        self._watches: dict[str, tuple[Any, tuple[int, int]]] = {}
        self._missing: set[str] = set()
        self._pending: set[str] = set()
        self._first_at: float | None = None
        self._last_at = 0.0
        self._cond = threading.Condition()
        # Never held together with _cond: watchdog calls the handler (which takes _cond)
        # with its own lock held, and schedule() takes that lock too.
        self._watch_lock = threading.Lock()
        self._stopping = False
        self._observer = Observer()
        self._handler = _Handler(self)
        self._thread = threading.Thread(target=self._run, name="pfwatch-files", daemon=True)

    # -- public -----------------------------------------------------------------------

    def start(self) -> DirectoryWatcher:
        """Start watching; returns self."""
        self._observer.start()
        self._sync_watches()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (pending changes are dropped)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)

    def set_directories(self, directories: Iterable[Path | str]) -> None:
        """Replace the set of watched directories (e.g. after a table was added)."""
        with self._watch_lock:
            self._wanted = {_absolute(d) for d in directories}
        self._sync_watches()

    @property
    def watched(self) -> frozenset[str]:
        """Directories currently under a live watch."""
        with self._watch_lock:
            return frozenset(self._watches)

    @property
    def missing(self) -> frozenset[str]:
        """Wanted directories that cannot be watched right now."""
        with self._watch_lock:
            return frozenset(self._missing)

    # -- events -----------------------------------------------------------------------

    def touch(self, paths: Iterable[str]) -> None:
        """Record touched paths (called by the watchdog handler; usable by tests)."""
        with self._cond:
            now = self._clock()
            for path in paths:
                self._pending.add(path)
                if Path(path).name.startswith(".."):
                    self._pending.update(_symlinks_in(Path(path).parent))
            if self._first_at is None:
                self._first_at = now
            self._last_at = now
            self._cond.notify_all()

    def _run(self) -> None:
        next_rescan = self._clock() + self._rescan
        while True:
            if self._clock() >= next_rescan:
                self._sync_watches()
                next_rescan = self._clock() + self._rescan
            with self._cond:
                if self._stopping:
                    return
                now = self._clock()
                due = self._due()
                if due is None or now < due:
                    wake = next_rescan if due is None else min(due, next_rescan)
                    self._cond.wait(timeout=max(0.0, wake - now))
                    continue
                batch = frozenset(self._pending)
                self._pending.clear()
                self._first_at = None
            try:
                self._on_change(batch)
            except Exception as exc:
                self._on_problem("", f"change callback failed: {type(exc).__name__}: {exc}")

    def _due(self) -> float | None:
        if self._first_at is None:
            return None
        return min(self._last_at + self._quiet, self._first_at + self._max_delay)

    # -- keeping the watches in line with the directories -----------------------------

    def _sync_watches(self) -> None:
        touched: list[str] = []
        problems: list[tuple[str, str]] = []
        with self._watch_lock:
            for directory in sorted(set(self._watches) - self._wanted):
                self._unschedule(directory)
            self._missing &= self._wanted
            for directory in sorted(self._wanted):
                identity = _identity(directory)
                current = self._watches.get(directory)
                if current is not None and current[1] == identity:
                    continue
                if current is not None:
                    self._unschedule(directory)
                    touched.append(directory)
                if identity is None:
                    if directory not in self._missing:
                        self._missing.add(directory)
                        problems.append((directory, "directory missing or not a directory"))
                    continue
                try:
                    watch = self._observer.schedule(self._handler, directory, recursive=False)
                except OSError as exc:
                    if directory not in self._missing:
                        self._missing.add(directory)
                        problems.append((directory, f"cannot watch: {exc.strerror or exc}"))
                    continue
                self._watches[directory] = (watch, identity)
                if directory in self._missing:
                    self._missing.discard(directory)
                    touched.append(directory)
        for directory, message in problems:
            self._on_problem(directory, message)
        if touched:
            self.touch(touched)

    def _unschedule(self, directory: str) -> None:
        watch, _ = self._watches.pop(directory)
        with contextlib.suppress(KeyError, OSError):
            self._observer.unschedule(watch)  # its emitter may have died with the directory

    def is_watched_dir(self, path: str) -> bool:
        """Whether ``path`` is one of the watched directories themselves."""
        return path in self._wanted


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: DirectoryWatcher) -> None:
        super().__init__()
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in IGNORED_EVENT_TYPES:
            return
        src = os.fsdecode(event.src_path)
        if (
            event.is_directory
            and event.event_type == "modified"
            and (self._watcher.is_watched_dir(src))
        ):
            return
        paths = [src]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(os.fsdecode(dest))
        self._watcher.touch(paths)


def _absolute(directory: Path | str) -> str:
    return str(Path(directory).absolute())


def _identity(directory: str) -> tuple[int, int] | None:
    path = Path(directory)
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_dir():
        return None
    return stat.st_dev, stat.st_ino


def _symlinks_in(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return [e.path for e in entries if e.is_symlink() and not e.name.startswith("..")]
    except OSError:
        return []
