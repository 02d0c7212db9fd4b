"""The configuration side of ``pfwatch watch``: snapshots, diffs, change events.

Inputs: the configuration directory, the last good :class:`Snapshot` (restored from the
state database, or None on a first start) and the change sequence number committed with
it. Outputs: per :meth:`ConfigTracker.check`, a :class:`ConfigUpdate` with the engine
events to fold (``ConfigSnapshotTaken`` the first time, ``ConfigChanged`` for a semantic
change, ``ConfigError`` for each newly seen problem) and the snapshot to store when it
was adopted. Errors: none raised; a directory that cannot be read is reported in
``ConfigUpdate.problem`` and the last good snapshot stays.

Rules:

- main.cf or master.cf unreadable (deleted, replaced by a directory, permission denied):
  a ``ConfigError`` naming the file and why; the last good snapshot stays in force (an
  empty main.cf must not look like "every parameter was removed").
- A file that does not parse: :func:`build_snapshot` keeps the last good parse of it;
  the problem becomes a ``ConfigError`` once (until it disappears and comes back).
- A change is stamped with the newest modification time of the files that changed, but
  never before the previous snapshot was taken nor after now (``cp -p`` keeps old
  mtimes). Edits made while pfwatch was down are found the same way at start-up.
- Change ids are ``c<seq>-<digest prefix>``: ``seq`` is committed with the snapshot, so a
  restart after ``kill -9`` derives the same id for the same edit.
- A change with no semantic effect (comments, blank lines) adopts the new snapshot but
  folds no ``ConfigChanged``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfwatch.config.diff import diff_snapshots
from pfwatch.config.drift import drift_of
from pfwatch.config.facts import change_inputs, facts_from_snapshot
from pfwatch.config.snapshot import Problem, Snapshot, build_snapshot, snapshot_to_json
from pfwatch.errors import PfwatchError
from pfwatch.events import ConfigError, ConfigSnapshotTaken, Event


@dataclass
class ConfigUpdate:
    """What one look at the configuration found."""

    events: list[Event] = field(default_factory=list)
    adopted: Snapshot | None = None
    problem: str | None = None
    position: dict[str, Any] = field(default_factory=dict)
    """:meth:`ConfigTracker.position` right after this look, to commit with its events."""

    _row: tuple[float, str, str] | None = field(default=None, init=False, repr=False)

    def stored(self) -> tuple[float, str, str] | None:
        """``(taken_at, digest, json)`` for :meth:`StateStore.commit`, when adopted
        (serialised once; the watch loop has its worker thread do it)."""
        if self.adopted is None:
            return None
        if self._row is None:
            text = json.dumps(snapshot_to_json(self.adopted), sort_keys=True)
            self._row = (self.adopted.taken_at, self.adopted.digest, text)
        return self._row


class ConfigTracker:
    """Keeps the last good snapshot of one configuration directory."""

    def __init__(self, config_dir: Path | str, current: Snapshot | None, seq: int = 0) -> None:
        self.config_dir = Path(config_dir)
        self.current = current
        self.latest: Snapshot | None = None
        """What the last look read, adopted or not (its ``parsed`` files are what lint
        and ``check`` read; ``current`` may be an older, restored snapshot)."""
        self.seq = seq
        self._reported: set[Problem] = set(current.problems) if current is not None else set()
        self._unreadable: dict[str, str] = {}

    def directories(self) -> set[str]:
        """The configuration directory and the directory of every referenced file."""
        found = {os.path.normpath(self.config_dir.absolute())}
        if self.current is not None:
            for table in self.current.tables:
                for path in (table.ref.source, *table.ref.compiled):
                    if path:
                        found.add(str(Path(os.path.normpath(path)).parent))
        return found

    def concerns(self, paths: frozenset[str]) -> bool:
        """Whether a burst of touched paths can change the snapshot: main.cf, master.cf,
        a referenced table or its compiled file, a watched directory itself (it came
        back), or a Kubernetes ConfigMap swap (``..data``). Other files in a watched
        directory (``/etc`` holds ``aliases``) do not cost a snapshot."""
        directories = self.directories()
        base = os.path.normpath(self.config_dir.absolute())
        files = {str(Path(base) / "main.cf"), str(Path(base) / "master.cf")}
        if self.current is not None:
            for table in self.current.tables:
                files.update(
                    os.path.normpath(p) for p in (table.ref.source, *table.ref.compiled) if p
                )
        for path in paths:
            normal = os.path.normpath(path)
            if normal in files or normal in directories or Path(normal).name.startswith(".."):
                return True
        return False

    def parameter(self, name: str, default: str) -> str:
        """An expanded main.cf value of the current snapshot."""
        if self.current is None:
            return default
        return self.current.expanded.get(name) or default

    def check(self, now: float) -> ConfigUpdate:
        """Take a snapshot now and compare it with the last good one."""
        update = self._check(now)
        update.position = self.position()
        return update

    def _check(self, now: float) -> ConfigUpdate:
        update = ConfigUpdate()
        try:
            fresh = build_snapshot(str(self.config_dir), self.current, taken_at=now)
        except PfwatchError as exc:
            update.problem = str(exc)
            return update
        self.latest = fresh
        unreadable = {
            path: state.error
            for path, state in fresh.files.items()
            if state.sha256 is None and state.error
        }
        for path, why in sorted(unreadable.items()):
            if self._unreadable.get(path) != why:
                update.events.append(ConfigError(now, path, 0, 0, f"cannot read: {why}"))
        self._unreadable = unreadable
        if unreadable and self.current is not None:
            return update  # keep the last good snapshot
        problems = set(fresh.problems)
        for problem in sorted(problems - self._reported, key=_problem_key):
            update.events.append(
                ConfigError(now, problem.path, problem.line, problem.column, problem.message)
            )
        self._reported = problems
        old = self.current
        if old is None:
            self.current = update.adopted = fresh
            update.events.append(ConfigSnapshotTaken(now, facts_from_snapshot(fresh)))
            return update
        if fresh.digest == old.digest:
            return update
        diff = diff_snapshots(old, fresh)
        inputs = change_inputs(diff, fresh)
        self.current = update.adopted = fresh
        if not (inputs.parameters or inputs.services or inputs.tables):
            return update
        self.seq += 1
        update.events.append(
            inputs.event(
                _edit_time(diff.files, inputs.tables, old.taken_at, now),
                f"c{self.seq}-{fresh.digest[:8]}",
                drift_of(diff, old, fresh),
            )
        )
        return update

    def position(self) -> dict[str, Any]:
        """What is committed with each batch: the change sequence and current digest."""
        return {
            "seq": self.seq,
            "digest": self.current.digest if self.current is not None else None,
        }


def _edit_time(files: tuple[str, ...], tables: tuple[Any, ...], floor: float, now: float) -> float:
    paths = list(files)
    for table in tables:
        paths.extend(p for p in (table.source, table.compiled) if p)
    newest = max(mtimes_of(paths), default=now)
    return min(now, max(newest, floor))


def mtimes_of(paths: Iterable[str]) -> list[float]:
    """Modification times of the files among ``paths`` that can be read."""
    found: list[float] = []
    for path in paths:
        try:
            found.append(Path(path).stat().st_mtime)
        except OSError:
            continue
    return found


def _problem_key(problem: Problem) -> tuple[str, int, int, str]:
    return problem.path, problem.line, problem.column, problem.message
