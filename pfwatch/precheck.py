"""The pre-change check: what is pending, on which basis, and what would a staged file do.

Builds the event history the engine needs from what can be established now, folds it
through the same pure engine as ``watch`` and ``explain`` (:func:`pfwatch.core.fold.fold`)
and reads the pending changes, stale processes, predictions and needed actions from the
resulting state. Bases, best first (each report names the one it used):

- ``state-dir``: the sidecar's stored engine state and last snapshot (exact edit times).
- ``git``: the configuration committed before the oldest running process started versus
  the files on disk (exact parameters; edit time = file modification time).
- ``mtime``: files modified after processes started; which parameters changed is unknown
  (the engine is told "all").
- ``log``: with ``--maillog``, process birth and activity come from the log as well.

Inputs: a :class:`CheckRequest`. Outputs: :class:`Assessment` (engine state, pending
changes, tables, lint, staged what-if). Errors: ``ConfigSyntaxError`` for an unparsable
main.cf/master.cf, ``SourceUnavailable``/``StateError`` for unusable inputs.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pfwatch.baseline import ProcessPicture, discover_processes, git_baseline
from pfwatch.config.diff import (
    ConfigDiff,
    change_inputs,
    diff_lines,
    diff_snapshots,
    facts_from_snapshot,
)
from pfwatch.config.snapshot import (
    Snapshot,
    build_snapshot,
    snapshot_from_json,
    snapshot_to_json,
)
from pfwatch.core.changes import ALL
from pfwatch.core.fold import step
from pfwatch.core.state import Change, EngineState, from_json
from pfwatch.errors import StateError, UsageError
from pfwatch.events import (
    ConfigChanged,
    ConfigSnapshotTaken,
    Event,
    Finding,
    LogEvent,
    ProcessTableSeen,
    TableEdit,
    Tick,
)
from pfwatch.lint import LintFinding
from pfwatch.liveconfig import LiveConfig, load_live_config
from pfwatch.maillog.reader import LogClassifier, iter_log_events
from pfwatch.sources.journald import JournalSource
from pfwatch.store.sqlite import open_read_only

CONFIG_FILES = ("main.cf", "master.cf")
BURST = 1.0
"""Files modified less than this many seconds apart are one edit (one burst)."""


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """What the operator asked for."""

    config_dir: Path
    now: float
    state_dir: Path | None = None
    maillog: Sequence[str] = ()
    journal: bool = False
    staged: Path | None = None
    postconf: str | None = "postconf"
    use_git: bool = True


@dataclass
class StagedWhatIf:
    """A candidate file or directory compared with the live configuration."""

    path: str
    diff: ConfigDiff
    lines: list[str]
    change: Change | None
    after_postmap: Change | None = None


@dataclass
class Assessment:
    """Everything ``check`` and ``wait`` report."""

    config: LiveConfig
    snapshot: Snapshot
    basis: str
    basis_detail: list[str]
    picture: ProcessPicture
    state: EngineState
    findings: list[Finding]
    lint: tuple[LintFinding, ...]
    staged: StagedWhatIf | None = None
    notes: list[str] = field(default_factory=list)

    def pending(self) -> list[Change]:
        """Changes not yet live, oldest first (a change whose postmap need a later rebuild
        satisfied stays listed until its own stale processes are gone)."""
        return sorted(
            (c for c in self.state.changes.values() if c.status != "live"),
            key=lambda c: c.at,
        )


def fold_all(state: EngineState, events: Iterable[Event]) -> tuple[EngineState, list[Finding]]:
    """Fold events in order into a copy of ``state``; return it and every finding."""
    state = state.copy()
    found: list[Finding] = []
    for event in events:
        found.extend(step(state, event))
    return state, found


def _polls(picture: ProcessPicture, after: float) -> list[ProcessTableSeen]:
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


def _mtime_events(
    config: LiveConfig, snapshot: Snapshot, picture: ProcessPicture
) -> tuple[list[Event], list[str]]:
    """Edits known only by modification time: each file newer than the oldest process."""
    oldest = _oldest(picture)
    facts = facts_from_snapshot(snapshot)
    events: list[Event] = [ConfigSnapshotTaken(oldest - 1.0, facts)]
    notes: list[str] = []
    stamped = sorted(
        (mtime, path)
        for path in dict.fromkeys(config.files())
        for mtime in _mtimes([path])
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


def _mtimes(paths: Iterable[str]) -> list[float]:
    found: list[float] = []
    for path in paths:
        try:
            found.append(Path(path).stat().st_mtime)
        except OSError:
            continue
    return found


def _oldest(picture: ProcessPicture) -> float:
    oldest = min((p.started_at for p in picture.children), default=picture.at)
    if picture.master is not None:
        oldest = min(oldest, picture.master.started_at)
    return oldest


def relocate(snapshot: Snapshot, scratch: str, live: str) -> Snapshot:
    """The same snapshot with every path under ``scratch`` moved to ``live``."""
    text = json.dumps(snapshot_to_json(snapshot))
    return snapshot_from_json(
        json.loads(text.replace(json.dumps(scratch)[1:-1], json.dumps(live)[1:-1]))
    )


def snapshot_with_texts(live_dir: Path, texts: Mapping[str, str | None], at: float) -> Snapshot:
    """A snapshot of ``live_dir`` as if the files named in ``texts`` read differently.

    The directory is copied to a private temporary directory (removed afterwards);
    references to ``live_dir`` inside main.cf and master.cf are pointed at the copy so
    tables inside the configuration directory are read from the copy, and the resulting
    snapshot is moved back to ``live_dir``'s paths so it compares with the live one.
    """
    scratch = Path(tempfile.mkdtemp(prefix="pfwatch-what-if-"))
    try:
        copy = scratch / "etc"
        shutil.copytree(live_dir, copy, symlinks=True)
        for name, text in texts.items():
            target = copy / name
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.write_bytes(text.encode("utf-8", "surrogateescape"))
        for name in CONFIG_FILES:
            path = copy / name
            if path.is_file():
                body = path.read_bytes().decode("utf-8", "surrogateescape")
                path.write_bytes(
                    body.replace(str(live_dir), str(copy)).encode("utf-8", "surrogateescape")
                )
        return relocate(build_snapshot(str(copy), taken_at=at), str(copy), str(live_dir))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _git_events(
    config: LiveConfig, snapshot: Snapshot, picture: ProcessPicture
) -> tuple[list[Event], list[str]] | None:
    """Edits relative to the commit that was current when the oldest process started."""
    oldest = _oldest(picture)
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
    mtimes = _mtimes(diff.files)
    edited_at = max(mtimes) if mtimes else picture.at
    events.append(changed_event(old, snapshot, edited_at, f"git-{base.revision[:8]}"))
    return events, notes


def changed_event(old: Snapshot, new: Snapshot, at: float, change_id: str) -> ConfigChanged:
    """The engine's ``ConfigChanged`` for the semantic diff from ``old`` to ``new``.

    A table that is newly referenced and already compiled (fresh) is not "source edited
    without postmap": its compiled file arrives with it, so it is marked rebuilt.
    """
    diff = diff_snapshots(old, new)
    inputs = change_inputs(diff, new)
    fresh_added = {
        t.ref for t in diff.tables if t.kind == "added" and t.new_freshness in ("fresh", None)
    }
    tables = tuple(
        dataclasses.replace(t, compiled_changed=True)
        if t.ref in fresh_added and t.compiled is not None
        else t
        for t in inputs.tables
    )
    return ConfigChanged(
        at=at,
        change_id=change_id,
        files=inputs.files,
        parameters=inputs.parameters,
        services=inputs.services,
        tables=tables,
        facts=inputs.facts,
        summary=inputs.summary,
    )


def _state_dir_events(
    state_dir: Path, snapshot: Snapshot, now: float
) -> tuple[EngineState, list[Event], list[str]]:
    """The sidecar's stored engine state, plus an edit it has not seen yet (if any)."""
    store = open_read_only(state_dir)
    if store is None:
        raise UsageError(
            f"--state-dir {state_dir}: no pfwatch state database there "
            f"(run 'pfwatch watch --state-dir {state_dir}' first)"
        )
    try:
        stored = store.engine_state()
        last = store.last_snapshot()
    finally:
        store.close()
    if stored is None:
        raise StateError(f"{state_dir}: the state database holds no engine state yet")
    state = from_json(json.dumps(stored))
    notes = [f"state directory {state_dir}: engine state of the watch service"]
    events: list[Event] = []
    if last is not None:
        try:
            previous = snapshot_from_json(json.loads(last.json))
        except (ValueError, KeyError, TypeError):
            previous = None
        if previous is not None and previous.digest != snapshot.digest:
            diff = diff_snapshots(previous, snapshot)
            if not diff.empty:
                mtimes = _mtimes(diff.files)
                at = max([*mtimes, last.taken_at])
                events.append(changed_event(previous, snapshot, at, f"unseen-{at:.3f}"))
                notes.append(
                    "an edit newer than the last stored snapshot (the watch "
                    "service has not recorded it)"
                )
    return state, events, notes


def log_classifier(config: LiveConfig) -> LogClassifier:
    syslog = {}
    for service in config.master.services:
        name = service.overrides.get("syslog_name")
        if name:
            syslog[name] = service.name
    return LogClassifier(syslog_services=syslog)


def _log_events(paths: Sequence[str], config: LiveConfig) -> list[LogEvent]:
    return list(iter_log_events(list(paths), log_classifier(config)))


def _journal_events(since: float, config: LiveConfig) -> list[LogEvent]:
    classifier = log_classifier(config)
    found: list[LogEvent] = []
    with JournalSource(follow=False, since=f"@{int(since)}", start="beginning") as source:
        for record in source.records():
            event = classifier.feed_journal(record.fields)
            if event is not None:
                found.append(event)
    return found


def _merge(*streams: Iterable[Event]) -> list[Event]:
    order = {ConfigSnapshotTaken: 0, ConfigChanged: 1}
    merged = [e for stream in streams for e in stream]
    merged.sort(key=lambda e: (e.at, order.get(type(e), 2)))
    return merged


def assess(request: CheckRequest) -> Assessment:
    """Establish pending edits, fold them through the engine, lint, and the what-if."""
    config = load_live_config(request.config_dir, request.postconf)
    snapshot = build_snapshot(str(request.config_dir), taken_at=request.now)
    picture = discover_processes(
        config.config_dir, config.queue_directory, config.instance_name, request.now
    )
    if request.journal:
        log = _journal_events(_oldest(picture) - 60.0, config)
    else:
        log = _log_events(request.maillog, config) if request.maillog else []
    notes: list[str] = []
    if request.state_dir is not None:
        state, events, detail = _state_dir_events(request.state_dir, snapshot, request.now)
        basis = "state-dir"
        events = _merge(events, log)
    else:
        state = EngineState()
        found = _git_events(config, snapshot, picture) if request.use_git else None
        if found is not None:
            events, detail = found
            basis = "git"
        else:
            events, detail = _mtime_events(config, snapshot, picture)
            basis = "mtime"
        if log:
            events = _merge(events, log)
            where = "journal" if request.journal else ", ".join(request.maillog)
            detail.append(f"log: {where} ({len(log)} Postfix lines)")
        else:
            events = _merge(events, _polls(picture, after=events[0].at if events else 0.0))
    if picture.running:
        events.append(ProcessTableSeen(picture.at, picture.children))
        detail.append(f"processes: {picture.source}, {len(picture.children)} running")
    else:
        detail.append(f"processes: {picture.source}")
    events.append(Tick(request.now))
    state, findings = fold_all(state, events)
    assessment = Assessment(
        config=config,
        snapshot=snapshot,
        basis=basis,
        basis_detail=detail,
        picture=picture,
        state=state,
        findings=findings,
        lint=config.lint(),
        notes=notes,
    )
    if request.staged is not None:
        assessment.staged = what_if(assessment, request.staged, request.now)
    return assessment


def _staged_texts(config_dir: Path, staged: Path, table_sources: set[str]) -> dict[str, str]:
    files = sorted(p for p in staged.iterdir() if p.is_file()) if staged.is_dir() else [staged]
    if not staged.exists():
        raise UsageError(f"--staged {staged}: no such file or directory")
    texts: dict[str, str] = {}
    for path in files:
        name = path.name
        if name not in CONFIG_FILES and str(config_dir / name) not in table_sources:
            raise UsageError(
                f"--staged {path}: {name} is neither main.cf, master.cf nor a table source "
                f"in {config_dir} (name the candidate like the file it replaces)"
            )
        texts[name] = path.read_bytes().decode("utf-8", "surrogateescape")
    return texts


def what_if(assessment: Assessment, staged: Path, now: float) -> StagedWhatIf:
    """What installing ``staged`` now would do, computed by the engine from this state."""
    config = assessment.config
    sources = {t.ref.source for t in assessment.snapshot.tables if t.ref.source}
    texts = _staged_texts(config.config_dir, staged, {s for s in sources if s})
    candidate = snapshot_with_texts(config.config_dir, texts, now)
    diff = diff_snapshots(assessment.snapshot, candidate)
    result = StagedWhatIf(str(staged), diff, diff_lines(diff), None)
    if diff.empty:
        return result
    event = changed_event(assessment.snapshot, candidate, now, "staged")
    state, _ = fold_all(assessment.state.copy(), [event, Tick(now)])
    result.change = state.changes.get("staged")
    unbuilt = [
        t
        for t in event.tables
        if t.source_changed and not t.compiled_changed and t.compiled is not None
    ]
    if unbuilt:
        rebuilt = dataclasses.replace(
            event,
            change_id="staged+postmap",
            tables=tuple(dataclasses.replace(t, compiled_changed=True) for t in event.tables),
        )
        state, _ = fold_all(assessment.state.copy(), [rebuilt, Tick(now)])
        result.after_postmap = state.changes.get("staged+postmap")
    return result
