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
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfwatch.changewindow.baseline import git_events, mtime_events
from pfwatch.changewindow.whatif import CONFIG_FILES, changed_event, snapshot_with_texts
from pfwatch.config.defaults import postconf_mail_version
from pfwatch.config.diff import ConfigDiff, diff_lines, diff_snapshots
from pfwatch.config.snapshot import Snapshot, build_snapshot
from pfwatch.core.confirm import refresh_prediction
from pfwatch.core.fold import fold_order, step
from pfwatch.core.state import Change, EngineState, from_json
from pfwatch.errors import SourceUnavailable, StateError, UsageError
from pfwatch.events import (
    ConfigChanged,
    Event,
    Finding,
    LogEvent,
    ProcessInfo,
    ProcessTableSeen,
    Tick,
)
from pfwatch.knowledge import releases
from pfwatch.lint import LintFinding, lint_snapshot
from pfwatch.service import startup
from pfwatch.service.config_tracker import ConfigTracker
from pfwatch.sources.procfs import ProcScanner

if TYPE_CHECKING:
    from pfwatch.maillog.reader import LogClassifier
    from pfwatch.service.log_input import LogInput

# The log reader and its inputs, the journal and the state store are imported where they
# are used: a check that reads none of them (no log, no --state-dir) starts without them.


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
    """The postconf asked for the release when the log names none (None: do not ask)."""
    use_git: bool = True
    instance_names: frozenset[str] | None = None
    """On a multi-instance host, the program prefixes of this instance's log lines (the
    log holds every instance's); None: every Postfix line is this instance's."""
    state_instance: str | None = None
    """With ``state_dir`` on a multi-instance host: the other instance whose engine state
    to take from the watch's state document (None: the primary's)."""

    def own(self, events: Iterable[LogEvent]) -> list[LogEvent]:
        """The events of this instance (all of them when it is the only one)."""
        names = self.instance_names
        if names is None:
            return list(events)
        return [e for e in events if e.instance in names]


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
    """Everything ``check`` and ``wait`` report, and the inputs ``wait`` keeps polling."""

    config_dir: Path
    tracker: ConfigTracker
    scanner: ProcScanner
    basis: str
    basis_detail: list[str]
    table: ProcessTableSeen | None
    """The one /proc poll (None when this Postfix is not visible there)."""
    state: EngineState
    findings: list[Finding]
    lint: tuple[LintFinding, ...]
    inputs: list[LogInput] = field(default_factory=list)
    """Log inputs read to their end (``follow``), for ``wait`` to keep polling."""
    staged: StagedWhatIf | None = None
    release: dict[str, Any] = field(default_factory=dict)
    """The Postfix release (:meth:`pfwatch.knowledge.releases.ReleaseTrack.summary`): from
    the log's last master start, else ``postconf -d``, else ``PFWATCH_POSTFIX_VERSION``."""

    @property
    def snapshot(self) -> Snapshot:
        assert self.tracker.current is not None  # assess() raises otherwise
        return self.tracker.current

    @property
    def children(self) -> tuple[ProcessInfo, ...]:
        """The running Postfix daemons (the master's children)."""
        found = self.table.processes if self.table is not None else ()
        return tuple(p for p in found if p.daemon != "master")

    @property
    def running(self) -> bool:
        return self.table is not None and bool(self.table.processes)

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


class _Strict:
    """The logger :func:`startup.restore` reports to: for check an unusable state is an
    error, not a reason to start afresh."""

    def warning(self, event: str, **fields: Any) -> None:
        raise StateError(f"{event}: {fields.get('error', '')}")


def _restore(
    state_dir: Path, config_dir: Path, instance: str | None = None
) -> startup.Restored | None:
    """The sidecar's stored engine state and snapshot, restored as ``watch`` restores them
    (another instance of a multi-instance host: its engine state, and no snapshot, which
    ``watch`` keeps for the primary only)."""
    from pfwatch.store.sqlite import open_read_only  # noqa: PLC0415 - see the imports

    store = open_read_only(state_dir)
    if store is None:
        raise UsageError(
            f"--state-dir {state_dir}: no pfwatch state database there "
            f"(run 'pfwatch watch --state-dir {state_dir}' first)"
        )
    try:
        stored = store.engine_state()
        if stored is None:
            raise StateError(f"{state_dir}: the state database holds no engine state yet")
        if instance is None:
            return startup.restore(store, config_dir, _Strict())
        saved = (stored.get("instances") or {}).get(instance)
        if saved is None:  # the watcher did not follow this instance: start afresh
            return None
        state = from_json(json.dumps(saved))
        state.settings.history_limit = startup.HISTORY_LIMIT
        return startup.Restored(state, ConfigTracker(config_dir, None), {})
    finally:
        store.close()


def _replayed(paths: Sequence[str], classifier: LogClassifier, since: float | None) -> list[Any]:
    """The log's events; with ``since``, plain files are read from about then on."""
    from pfwatch.maillog.reader import iter_log_events  # noqa: PLC0415 - see the imports

    return list(iter_log_events(list(paths), classifier, not_before=since))


def _journal_events(since: float, classifier: LogClassifier) -> list[LogEvent]:
    from pfwatch.sources.journald import JournalSource  # noqa: PLC0415 - see the imports

    found: list[LogEvent] = []
    with JournalSource(follow=False, since=f"@{int(since)}", start="beginning") as source:
        for record in source.records():
            event = classifier.feed_journal(record.fields)
            if event is not None:
                found.append(event)
    return found


def _log(
    request: CheckRequest, classifier: LogClassifier, since: float | None, *, follow: bool
) -> tuple[list[LogEvent], list[LogInput]]:
    """The log's lines (and, to ``follow`` it, the inputs read to their end)."""
    from pfwatch.service.log_input import LogInput  # noqa: PLC0415 - see the imports

    inputs: list[LogInput] = []
    if follow:
        inputs = [LogInput(classifier, maillog=Path(p), start="beginning") for p in request.maillog]
    log = [e for source in inputs for e in source.drain()]
    if request.maillog and not follow:
        log = _replayed(request.maillog, classifier, since)
    if request.journal:
        log += _journal_events((since or request.now) - 60.0, classifier)
        if follow:
            inputs.append(LogInput(classifier, maillog=None))
    return log, inputs


def _release(log: Sequence[LogEvent], postconf: str | None) -> dict[str, Any]:
    """The release as ``explain`` tells it: the log's master starts first."""
    track = releases.ReleaseTrack()
    for event in log:
        if event.kind in ("master_started", "master_reloaded") and event.fields.get("version"):
            track.observe(event.fields["version"], event.at)
    from_postconf = None if track.seen else postconf_mail_version(postconf)
    return track.summary(postconf=from_postconf, configured=os.environ.get(releases.ENV_VAR))


def assess(request: CheckRequest, *, follow: bool = False) -> Assessment:
    """Fold what ``watch`` folds when it starts, after the history of the best basis.

    The configuration tracker, /proc scanner and log classifier are the ones ``watch``
    starts with (:mod:`pfwatch.service.startup`): restored from ``--state-dir``, else
    fresh, with the edits since the oldest running process told by git or by
    modification times. Folded in the engine's one event order: that history, the
    tracker's first look, the log, one /proc poll and a tick. With ``follow``, the log
    files are read through the inputs ``wait`` then keeps polling (no line lost or read
    twice in between).
    """
    restored = None
    if request.state_dir is not None:
        restored = _restore(request.state_dir, request.config_dir, request.state_instance)
    from_state = restored is not None
    if restored is None:
        restored = startup.restore(None, request.config_dir, _Strict())
    state, tracker = restored.state, restored.tracker
    update = tracker.check(request.now)
    if tracker.current is None:  # the tracker keeps the reason as text: raise it typed
        build_snapshot(str(request.config_dir), taken_at=request.now)
        raise SourceUnavailable(str(request.config_dir), update.problem or "unreadable")
    snapshot = tracker.current
    read = tracker.latest
    assert read is not None  # the look that gave ``current`` (or read the same files)
    lint = lint_snapshot(read)  # raises when main.cf or master.cf does not parse
    scanner = startup.scanner_for(tracker, request.config_dir)
    table = scanner.poll(request.now)
    history: list[Event] = []
    if from_state:
        basis = "state-dir"
        detail = [f"state directory {request.state_dir}: engine state of the watch service"]
        if any(isinstance(e, ConfigChanged) for e in update.events):
            detail.append(
                "an edit newer than the last stored snapshot (the watch service has not "
                "recorded it)"
            )
        since: float | None = state.now  # the watcher folded the log up to here already
    else:
        found = git_events(snapshot, table, request.now) if request.use_git else None
        basis = "git" if found is not None else "mtime"
        history, detail = found or mtime_events(snapshot, table, request.now)
        since = history[0].at if history else None
    log: list[LogEvent] = []
    inputs: list[LogInput] = []
    if request.maillog or request.journal:
        classifier = startup.classifier_for(tracker)
        log, inputs = _log(request, classifier, since, follow=follow)
        log = request.own(log)
    release = _release(log, request.postconf)
    if since is not None:  # older lines cannot change what is pending (or were folded)
        log = (
            [e for e in log if e.at > since]
            if basis == "state-dir"
            else [e for e in log if e.at >= since]
        )
    if log:
        where = "journal" if request.journal else ", ".join(request.maillog)
        detail.append(f"log: {where} ({len(log)} Postfix lines)")
    running = len(table.processes) if table is not None else 0
    detail.append(f"processes: /proc ({scanner.how}), {running} running")
    events: list[Event] = [*history, *update.events, *log, Tick(request.now)]
    if table is not None:
        events.append(table)
    events.sort(key=fold_order)
    state, findings = fold_all(state, events)
    for change in state.changes.values():
        if change.status != "live":
            refresh_prediction(state, change)
    assessment = Assessment(
        config_dir=request.config_dir,
        tracker=tracker,
        scanner=scanner,
        basis=basis,
        basis_detail=detail,
        table=table,
        state=state,
        findings=findings,
        lint=lint,
        inputs=inputs,
        release=release,
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
    config_dir = assessment.config_dir
    sources = {t.ref.source for t in assessment.snapshot.tables if t.ref.source}
    texts = _staged_texts(config_dir, staged, {s for s in sources if s})
    candidate = snapshot_with_texts(config_dir, texts, now)
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
