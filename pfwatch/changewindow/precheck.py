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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pfwatch.changewindow.baseline import (
    ProcessPicture,
    birth_polls,
    discover_processes,
    git_events,
    mtime_events,
    mtimes_of,
    oldest_start,
)
from pfwatch.changewindow.liveconfig import LiveConfig, load_live_config
from pfwatch.changewindow.whatif import CONFIG_FILES, changed_event, snapshot_with_texts
from pfwatch.config.diff import ConfigDiff, diff_lines, diff_snapshots
from pfwatch.config.snapshot import (
    Snapshot,
    build_snapshot,
    snapshot_from_json,
)
from pfwatch.core.fold import fold_order, step
from pfwatch.core.state import Change, EngineState, from_json
from pfwatch.errors import StateError, UsageError
from pfwatch.events import (
    Event,
    Finding,
    LogEvent,
    ProcessTableSeen,
    Tick,
)
from pfwatch.lint import LintFinding

if TYPE_CHECKING:
    from pfwatch.maillog.reader import LogClassifier

# The log reader, the journal and the state store are imported where they are used: a
# check that reads none of them (no log, no --state-dir) starts without their modules.


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


def _state_dir_events(
    state_dir: Path, snapshot: Snapshot, now: float
) -> tuple[EngineState, list[Event], list[str]]:
    """The sidecar's stored engine state, plus an edit it has not seen yet (if any)."""
    from pfwatch.store.sqlite import open_read_only  # noqa: PLC0415 - see the imports

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
                mtimes = mtimes_of(diff.files)
                at = max([*mtimes, last.taken_at])
                events.append(changed_event(previous, snapshot, at, f"unseen-{at:.3f}"))
                notes.append(
                    "an edit newer than the last stored snapshot (the watch "
                    "service has not recorded it)"
                )
    return state, events, notes


def log_classifier(config: LiveConfig) -> LogClassifier:
    from pfwatch.maillog.reader import LogClassifier  # noqa: PLC0415 - see the imports

    syslog = {}
    for service in config.master.services:
        name = service.overrides.get("syslog_name")
        if name:
            syslog[name] = service.name
    return LogClassifier(syslog_services=syslog)


def _log_events(
    paths: Sequence[str], config: LiveConfig, not_before: float | None = None
) -> list[LogEvent]:
    """The log's events; with ``not_before``, plain files are read from about then on."""
    from pfwatch.maillog.reader import iter_log_events  # noqa: PLC0415 - see the imports

    return list(iter_log_events(list(paths), log_classifier(config), not_before=not_before))


def _journal_events(since: float, config: LiveConfig) -> list[LogEvent]:
    from pfwatch.sources.journald import JournalSource  # noqa: PLC0415 - see the imports

    classifier = log_classifier(config)
    found: list[LogEvent] = []
    with JournalSource(follow=False, since=f"@{int(since)}", start="beginning") as source:
        for record in source.records():
            event = classifier.feed_journal(record.fields)
            if event is not None:
                found.append(event)
    return found


def _merge(*streams: Iterable[Event]) -> list[Event]:
    merged = [e for stream in streams for e in stream]
    merged.sort(key=fold_order)
    return merged


def assess(request: CheckRequest, log: list[LogEvent] | None = None) -> Assessment:
    """Establish pending edits, fold them through the engine, lint, and the what-if.

    ``log``: log events already read by the caller (``wait`` reads them through the
    follower it then keeps polling); None reads ``request.maillog`` or the journal.
    """
    config = load_live_config(request.config_dir, request.postconf)
    snapshot = build_snapshot(str(request.config_dir), taken_at=request.now)
    picture = discover_processes(
        config.config_dir, config.queue_directory, config.instance_name, request.now
    )
    if log is None and request.journal:
        log = _journal_events(oldest_start(picture) - 60.0, config)
    notes: list[str] = []
    if request.state_dir is not None:
        state, events, detail = _state_dir_events(request.state_dir, snapshot, request.now)
        basis = "state-dir"
        seen_until = state.now  # the watcher folded the log up to here already
        if log is None:
            log = _log_events(request.maillog, config, seen_until) if request.maillog else []
        events = _merge(events, [e for e in log if e.at > seen_until])
    else:
        state = EngineState()
        found = git_events(config, snapshot, picture) if request.use_git else None
        if found is not None:
            events, detail = found
            basis = "git"
        else:
            events, detail = mtime_events(config, snapshot, picture)
            basis = "mtime"
        if log is None:
            since = events[0].at if events else None
            log = _log_events(request.maillog, config, since) if request.maillog else []
        if log:
            # lines older than the oldest running process cannot change what is pending
            log = [e for e in log if e.at >= events[0].at]
            events = _merge(events, log)
            where = "journal" if request.journal else ", ".join(request.maillog)
            detail.append(f"log: {where} ({len(log)} Postfix lines)")
        else:
            events = _merge(events, birth_polls(picture, after=events[0].at if events else 0.0))
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
