"""What ``pfwatch check`` can establish without a state directory.

Three bases, best first, each named in the report so the operator knows how far to trust
it:

- ``git``: the configuration directory is inside a git work tree (etckeeper keeps /etc
  that way). The version committed before the oldest running process started is what
  that process runs; the semantic diff against the files on disk says exactly what is
  pending.
- ``mtime``: a file modified after a process started is pending for that process; which
  parameters changed is unknown, so every process older than the edit counts as stale.
- Process start times come from /proc, to the clock tick (:func:`procfs.start_time
  <pfwatch.sources.procfs.start_time>`; processes found with psutil from the master's pid
  file in ``$queue_directory/pid/master.pid`` or the ``MAIL_CONFIG`` environment) or, when
  /proc does not show this Postfix, from the first log line of each pid.

The event builders (:func:`mtime_events`, :func:`git_events`, :func:`birth_polls`) turn
each basis into the engine's events (snapshot, changes, process polls).

Inputs: a configuration directory, its queue directory, optionally a maillog. Outputs:
:class:`ProcessPicture`, :class:`FileStamp`, :class:`GitBaseline`, engine events. Errors:
:class:`~pfwatch.errors.SourceUnavailable` when a file cannot be read; a missing git or
unreadable /proc entry is not an error (the basis is then weaker and says so).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pfwatch.changewindow.liveconfig import LiveConfig
from pfwatch.changewindow.whatif import changed_event, snapshot_with_texts
from pfwatch.config.diff import diff_snapshots
from pfwatch.config.facts import facts_from_snapshot
from pfwatch.config.snapshot import Snapshot
from pfwatch.core.changes import ALL
from pfwatch.events import (
    ConfigChanged,
    ConfigSnapshotTaken,
    Event,
    ProcessInfo,
    ProcessTableSeen,
    TableEdit,
)
from pfwatch.sources.procfs import start_time

MASTER_PID_FILE = "pid/master.pid"
"""Relative to queue_directory (src/master/master.c: the pid file the master locks)."""

RELOAD_RESTARTED = ("qmgr", "pickup")
"""Services with a wakeup time: reload re-arms their trigger at once, so new processes
appear immediately (src/master/master_wakeup.c:165-175); qmgr otherwise never exits by
idle or use (src/qmgr/qmgr.c:741-742). Their start time bounds the last reload."""


@dataclass(frozen=True, slots=True)
class ProcessPicture:
    """The running Postfix of one configuration directory at ``at``."""

    at: float
    master: ProcessInfo | None
    children: tuple[ProcessInfo, ...]
    source: str

    @property
    def running(self) -> bool:
        return self.master is not None or bool(self.children)

    def last_reload_bound(self) -> tuple[float | None, str]:
        """The latest moment master.cf was certainly read: master start or a reload.

        Returns (time, how it was established); (None, reason) when nothing runs.
        """
        if self.master is None:
            return None, "no master process found"
        best, how = self.master.started_at, "master start"
        for child in self.children:
            if child.daemon == "qmgr" and child.started_at > best:
                best, how = child.started_at, "qmgr start (reload restarts qmgr at once)"
        return best, how

    def older_than(self, moment: float) -> tuple[ProcessInfo, ...]:
        """Children that started before ``moment`` (they run what was on disk then)."""
        return tuple(p for p in self.children if p.started_at < moment)


def _arg_after(cmdline: Sequence[str], flag: str) -> str | None:
    for index, arg in enumerate(cmdline[:-1]):
        if arg == flag:
            return cmdline[index + 1]
    return None


def process_info(proc: psutil.Process, instance: str) -> ProcessInfo:
    """A Postfix daemon process as the engine sees it (service = master.cf name)."""
    cmdline = proc.cmdline()
    daemon = Path(cmdline[0]).name if cmdline else proc.name()
    service = _arg_after(cmdline, "-n") or daemon
    started = start_time(proc.pid)  # psutil's create_time() is up to 1 s early
    started = proc.create_time() if started is None else started
    return ProcessInfo(proc.pid, daemon, service, instance, started)


def _master_from_pid_file(queue_dir: Path) -> psutil.Process | None:
    try:
        pid = int((queue_dir / MASTER_PID_FILE).read_text().split()[0])
        proc = psutil.Process(pid)
        if Path(proc.cmdline()[0]).name != "master":
            return None
        return proc
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def _master_from_environment(config_dir: Path) -> psutil.Process | None:
    """The master whose MAIL_CONFIG is ``config_dir``, else the only master whose
    environment cannot be read (a sidecar in Postfix's PID namespace, as procfs does)."""
    wanted = str(config_dir)
    unreadable: list[psutil.Process] = []
    for proc in psutil.process_iter(["name"]):
        if proc.info.get("name") != "master":
            continue
        try:
            env = proc.environ().get("MAIL_CONFIG", "/etc/postfix")
        except psutil.AccessDenied:
            unreadable.append(proc)
            continue
        except (psutil.Error, OSError):
            continue
        if os.path.realpath(env) == os.path.realpath(wanted):
            return proc
    return unreadable[0] if len(unreadable) == 1 else None


def discover_processes(
    config_dir: Path, queue_dir: Path, instance: str = "postfix", now: float | None = None
) -> ProcessPicture:
    """Find this configuration's master and its children in /proc."""
    at = time.time() if now is None else now
    master = _master_from_pid_file(queue_dir)
    source = f"/proc (master pid from {queue_dir / MASTER_PID_FILE})"
    if master is None:
        master = _master_from_environment(config_dir)
        source = "/proc (master found by its MAIL_CONFIG environment)"
    if master is None:
        return ProcessPicture(at, None, (), "/proc (no master process of this configuration)")
    try:
        master_info = process_info(master, instance)
        children = master.children()
    except psutil.Error:
        return ProcessPicture(at, None, (), "/proc (master vanished while looking)")
    infos: list[ProcessInfo] = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            infos.append(process_info(child, instance))
    infos.sort(key=lambda p: (p.started_at, p.pid))
    return ProcessPicture(at, master_info, tuple(infos), source)


@dataclass(frozen=True, slots=True)
class FileStamp:
    """A file's modification time (None when it does not exist)."""

    path: str
    mtime: float | None

    @classmethod
    def of(cls, path: str | Path) -> FileStamp:
        try:
            return cls(str(path), Path(path).stat().st_mtime)
        except FileNotFoundError:
            return cls(str(path), None)


def stamps(paths: Iterable[str | Path]) -> tuple[FileStamp, ...]:
    """Modification times of ``paths`` (duplicates dropped, order kept)."""
    seen: dict[str, FileStamp] = {}
    for path in paths:
        key = str(path)
        if key not in seen:
            seen[key] = FileStamp.of(key)
    return tuple(seen.values())


@dataclass(frozen=True, slots=True)
class GitBaseline:
    """The committed version of each configuration file at one moment."""

    top: str
    revision: str
    committed_at: float
    files: dict[str, str | None] = field(default_factory=dict)
    """Absolute path -> text at ``revision`` (None when the file did not exist then)."""
    dirty: tuple[str, ...] = ()
    """Files that differ from HEAD right now (uncommitted edits)."""


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        return subprocess.run(
            [git, *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def git_top(config_dir: Path) -> str | None:
    """The git work tree holding ``config_dir``, or None."""
    result = _git(["rev-parse", "--show-toplevel"], config_dir)
    if result is None or result.returncode != 0:
        return None
    return result.stdout.strip() or None


def git_baseline(config_dir: Path, files: Sequence[str], before: float) -> GitBaseline | None:
    """The last commit at or before ``before`` and the files' text in it, or None."""
    top = git_top(config_dir)
    if top is None:
        return None
    root = Path(top)
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before))  # git misreads small @N
    found = _git(["rev-list", "-1", f"--before={moment}", "HEAD"], root)
    if found is None or found.returncode != 0 or not found.stdout.strip():
        return None
    revision = found.stdout.strip()
    shown = _git(["show", "-s", "--format=%ct", revision], root)
    committed_at = float(shown.stdout.strip()) if shown and shown.returncode == 0 else before
    texts: dict[str, str | None] = {}
    for path in files:
        try:
            relative = Path(path).resolve().relative_to(root.resolve())
        except ValueError:
            continue
        blob = _git(["show", f"{revision}:{relative.as_posix()}"], root)
        texts[path] = blob.stdout if blob is not None and blob.returncode == 0 else None
    status = _git(["status", "--porcelain", "--", str(config_dir)], root)
    dirty: tuple[str, ...] = ()
    if status is not None and status.returncode == 0:
        dirty = tuple(str(root / line[3:]) for line in status.stdout.splitlines() if line[3:])
    return GitBaseline(top, revision, committed_at, texts, dirty)


BURST = 1.0
"""Files modified less than this many seconds apart are one edit (one burst)."""


def birth_polls(picture: ProcessPicture, after: float) -> list[ProcessTableSeen]:
    """One poll per birth time (each a subset of today's table), then today's table.

    The processes alive now were alive from their start time on, so a poll at each start
    time holding every current process born by then is true; it lets the engine place
    each birth before or after the edits between them.
    """
    everyone = tuple(picture.children)
    polls: list[ProcessTableSeen] = []
    for moment in sorted({p.started_at for p in everyone if p.started_at > after}):
        polls.append(ProcessTableSeen(moment, tuple(p for p in everyone if p.started_at <= moment)))
    polls.append(ProcessTableSeen(picture.at, everyone))
    return polls


def _table_edits(snapshot: Snapshot, paths: Sequence[str]) -> tuple[TableEdit, ...]:
    touched = set(paths)
    edits: list[TableEdit] = []
    for table in snapshot.tables:
        ref = table.ref
        compiled = ref.compiled[0] if ref.compiled else None
        source_changed = ref.source is not None and ref.source in touched
        compiled_changed = any(c in touched for c in ref.compiled)
        if source_changed or compiled_changed:
            edits.append(
                TableEdit(
                    ref=ref.ref,
                    type=ref.type,
                    source=ref.source,
                    compiled=compiled,
                    source_changed=source_changed,
                    compiled_changed=compiled_changed,
                    parameters=ref.parameters,
                )
            )
    return tuple(edits)


def mtime_events(
    config: LiveConfig, snapshot: Snapshot, picture: ProcessPicture
) -> tuple[list[Event], list[str]]:
    """Edits known only by modification time: each file newer than the oldest process."""
    oldest = oldest_start(picture)
    facts = facts_from_snapshot(snapshot)
    events: list[Event] = [ConfigSnapshotTaken(oldest - 1.0, facts)]
    notes: list[str] = []
    stamped = sorted(
        (mtime, path)
        for path in dict.fromkeys(config.files())
        for mtime in mtimes_of([path])
        if mtime > oldest
    )
    owner = {p: t.ref.ref for t in snapshot.tables for p in (t.ref.source, *t.ref.compiled) if p}
    last: dict[str, int] = {}
    bursts: list[tuple[float, list[str]]] = []
    for mtime, path in stamped:
        kind = owner.get(path, "config")  # a table's files, or main.cf/master.cf
        index = last.get(kind)
        if index is not None and mtime - bursts[index][0] < BURST:
            bursts[index] = (mtime, [*bursts[index][1], path])
        else:
            last[kind] = len(bursts)
            bursts.append((mtime, [path]))
    bursts.sort(key=lambda burst: burst[0])
    for number, (moment, paths) in enumerate(bursts, start=1):
        names = {Path(p).name for p in paths if Path(p).parent == config.config_dir}
        events.append(
            ConfigChanged(
                at=moment,
                change_id=f"mtime-{number}-{moment:.3f}",
                files=tuple(paths),
                parameters=(ALL,) if "main.cf" in names else (),
                services=(),
                tables=_table_edits(snapshot, paths),
                facts=facts,
                summary=tuple(f"~ {p} modified (what changed in it is unknown)" for p in paths),
            )
        )
        notes.append(
            f"{', '.join(paths)}: modified after the oldest running Postfix process started"
        )
    return events, notes


def mtimes_of(paths: Iterable[str]) -> list[float]:
    found: list[float] = []
    for path in paths:
        try:
            found.append(Path(path).stat().st_mtime)
        except OSError:
            continue
    return found


def oldest_start(picture: ProcessPicture) -> float:
    oldest = min((p.started_at for p in picture.children), default=picture.at)
    if picture.master is not None:
        oldest = min(oldest, picture.master.started_at)
    return oldest


def git_events(
    config: LiveConfig, snapshot: Snapshot, picture: ProcessPicture
) -> tuple[list[Event], list[str]] | None:
    """Edits relative to the commit that was current when the oldest process started."""
    oldest = oldest_start(picture)
    inside = [p for p in dict.fromkeys(config.files()) if Path(p).parent == config.config_dir]
    base = git_baseline(config.config_dir, inside, oldest)
    if base is None:
        return None
    texts = {Path(path).name: text for path, text in base.files.items()}
    old = snapshot_with_texts(config.config_dir, texts, oldest - 1.0)
    events: list[Event] = [ConfigSnapshotTaken(oldest - 1.0, facts_from_snapshot(old))]
    notes = [
        f"git: {base.top} at {base.revision[:12]} (last commit before the oldest running "
        f"process started) compared with the files on disk"
    ]
    if base.dirty:
        notes.append("git: uncommitted edits in " + ", ".join(base.dirty))
    diff = diff_snapshots(old, snapshot)
    if diff.empty:
        return events, notes
    mtimes = mtimes_of(diff.files)
    edited_at = max(mtimes) if mtimes else picture.at
    events.append(changed_event(old, snapshot, edited_at, f"git-{base.revision[:8]}"))
    return events, notes
