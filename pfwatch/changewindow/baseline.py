"""The history ``pfwatch check`` establishes without a state directory: its edits.

Two bases, best first, each named in the report so the operator knows how far to trust
it:

- ``git``: the configuration directory is inside a git work tree (etckeeper keeps /etc
  that way). The version committed before the oldest running process started is what
  that process runs; the semantic diff against the files on disk says exactly what is
  pending.
- ``mtime``: a file modified after a process started is pending for that process; which
  main.cf parameters changed is unknown, so every process older than the edit counts as
  stale. Which master.cf services changed shows in the running processes' argv: master
  builds it from master.cf when it reads the file (src/master/master_ent.c:550-585).

The processes and their start times are the one /proc poll of the watch service's
scanner (:class:`~pfwatch.sources.procfs.ProcScanner`); :func:`mtime_events` and
:func:`git_events` turn a basis into the engine's events (the snapshot before the oldest
process, the changes since).

Inputs: the live configuration, its snapshot, that /proc poll. Outputs:
:class:`GitBaseline`, engine events. Errors:
:class:`~pfwatch.errors.SourceUnavailable` when a file cannot be read; a missing git is
not an error (the basis is then weaker and says so).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pfwatch.changewindow.whatif import changed_event, snapshot_with_texts
from pfwatch.config.diff import diff_snapshots
from pfwatch.config.facts import facts_from_snapshot
from pfwatch.config.model import MasterService
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
from pfwatch.service.config_tracker import mtimes_of

MASTER_FLAGS = frozenset({"-l", "-z", "-d", "-v", "-u", "-c"})
"""Flags master puts between a child's command and its master.cf arguments; ``-n``,
``-t``, ``-s`` and ``-o stress=`` take a value (src/master/master_ent.c:550-585)."""
MASTER_VALUED = frozenset({"-n", "-t", "-s"})


def _master_prefix(words: Sequence[str]) -> bool:
    """Whether ``words`` (argv between the command and the master.cf arguments) are
    flags that master itself adds."""
    index = 0
    while index < len(words):
        word = words[index]
        if word in MASTER_VALUED or (
            word == "-o" and index + 1 < len(words) and words[index + 1].startswith("stress=")
        ):
            index += 2
        elif word in MASTER_FLAGS:
            index += 1
        else:
            return False
    return True


def runs_other_entry(proc: ProcessInfo, service: MasterService) -> bool:
    """Whether ``proc``'s argv shows that master.cf's entry for its service was different
    when master started it (command or arguments; argv unknown counts as the same)."""
    argv = proc.argv
    if not argv:
        return False
    args = service.args
    if Path(argv[0]).name != Path(service.command).name or len(argv) - 1 < len(args):
        return True
    tail = len(argv) - len(args)
    return tuple(argv[tail:]) != args or not _master_prefix(argv[1:tail])


def argv_changed_services(snapshot: Snapshot, table: ProcessTableSeen | None) -> tuple[str, ...]:
    """master.cf services (``name/type``) that a running process shows were edited since
    master last read master.cf: its argv is not what the entry gives now."""
    if table is None:
        return ()
    entries = {s.name: s for s in snapshot.services}
    changed: list[str] = []
    for proc in table.processes:
        service = entries.get(proc.service)
        if service is not None and service.key not in changed and runs_other_entry(proc, service):
            changed.append(service.key)
    return tuple(changed)


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


def _table_edits(snapshot: Snapshot, paths: Sequence[str]) -> tuple[TableEdit, ...]:
    """The table edits among ``paths`` (one burst). A compiled file older than its source
    was not rebuilt from the edited source (postmap ran before the edit, within the
    burst), so it does not count as rebuilt."""
    touched = set(paths)
    edits: list[TableEdit] = []
    for table in snapshot.tables:
        ref = table.ref
        compiled = ref.compiled[0] if ref.compiled else None
        source_changed = ref.source is not None and ref.source in touched
        source_mtime = (
            max(mtimes_of([ref.source]), default=None) if ref.source and source_changed else None
        )
        compiled_changed = any(
            c in touched
            and (source_mtime is None or max(mtimes_of([c]), default=0.0) >= source_mtime)
            for c in ref.compiled
        )
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
    snapshot: Snapshot, table: ProcessTableSeen | None, now: float
) -> tuple[list[Event], list[str]]:
    """Edits known only by modification time: each file newer than the oldest process.

    Which master.cf services changed is read from the running processes' argv
    (:func:`argv_changed_services`); which main.cf parameters changed is unknown."""
    oldest = oldest_start(table, now)
    config_dir = Path(snapshot.config_dir)
    facts = facts_from_snapshot(snapshot)
    events: list[Event] = [ConfigSnapshotTaken(oldest - 1.0, facts)]
    notes: list[str] = []
    stamped = sorted(
        (mtime, path) for path in snapshot.paths for mtime in mtimes_of([path]) if mtime > oldest
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
        names = {Path(p).name for p in paths if Path(p).parent == config_dir}
        services = argv_changed_services(snapshot, table) if "master.cf" in names else ()
        events.append(
            ConfigChanged(
                at=moment,
                change_id=f"mtime-{number}-{moment:.3f}",
                files=tuple(paths),
                parameters=(ALL,) if "main.cf" in names else (),
                services=services,
                tables=_table_edits(snapshot, paths),
                facts=facts,
                summary=tuple(f"~ {p} modified (what changed in it is unknown)" for p in paths),
            )
        )
        notes.append(
            f"{', '.join(paths)}: modified after the oldest running Postfix process started"
        )
    return events, notes


def oldest_start(table: ProcessTableSeen | None, now: float) -> float:
    """When the oldest running process (the master, usually) started; ``now`` if none."""
    return min((p.started_at for p in table.processes), default=now) if table else now


def git_events(
    snapshot: Snapshot, table: ProcessTableSeen | None, now: float
) -> tuple[list[Event], list[str]] | None:
    """Edits relative to the commit that was current when the oldest process started."""
    oldest = oldest_start(table, now)
    config_dir = Path(snapshot.config_dir)
    inside = [p for p in snapshot.paths if Path(p).parent == config_dir]
    base = git_baseline(config_dir, inside, oldest)
    if base is None:
        return None
    texts = {Path(path).name: text for path, text in base.files.items()}
    old = snapshot_with_texts(config_dir, texts, oldest - 1.0)
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
    edited_at = max(mtimes) if mtimes else now
    events.append(changed_event(old, snapshot, edited_at, f"git-{base.revision[:8]}"))
    return events, notes
