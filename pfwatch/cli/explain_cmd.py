"""``pfwatch explain``: replay a maillog through the lifecycle engine and explain it.

Reads the log(s) with the maillog classifier, optionally the configuration directory,
and one ``ConfigChanged`` per ``--changed-at TIME[=FILE]``; folds everything through
:mod:`pfwatch.core.fold` and prints the narrative (rich) or one JSON document
(docs/explain-json.md). Inputs: argv. Outputs: stdout; returns an exit status.
Errors: unreadable logs or config raise :class:`~pfwatch.errors.SourceUnavailable`,
bad option values :class:`~pfwatch.errors.UsageError` (turned into exit codes by the CLI).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import orjson

from pfwatch.core import fold, report
from pfwatch.core.changes import ALL
from pfwatch.core.state import EngineState, Settings
from pfwatch.errors import ExitStatus, SourceUnavailable, UsageError
from pfwatch.events import (
    ConfigChanged,
    ConfigFacts,
    ConfigSnapshotTaken,
    Event,
    LogEvent,
    TableEdit,
    Tick,
    machine_times,
)
from pfwatch.knowledge import releases
from pfwatch.knowledge.defaults import default_services
from pfwatch.knowledge.tables import COMPILED_SUFFIXES, split_ref, table_type
from pfwatch.maillog.reader import LineStats, LogClassifier, iter_log_events
from pfwatch.maillog.worker import WorkerReader

_TIME_ONLY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_SYSLOG_DATE = re.compile(r"^([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class ChangeSpec:
    """One ``--changed-at`` value: a time (absolute, or time of day) and maybe a file."""

    text: str
    file: str | None
    at: float | None
    time_of_day: tuple[int, int, float] | None
    month_day: tuple[int, int] | None = None


def parse_changed_at(value: str) -> ChangeSpec:
    """``TIME[=FILE]``: POSIX seconds, ISO 8601, ``Mmm dd HH:MM[:SS]`` (the log's year) or
    ``HH:MM[:SS]`` (the first such moment at or after the log's first line)."""
    text, _, file = value.partition("=")
    text = text.strip()
    if not text:
        raise UsageError(f"--changed-at {value!r}: no time given")
    month_day = None
    syslog = _SYSLOG_DATE.match(text)
    if syslog and syslog.group(1) in _MONTHS:
        month_day = (_MONTHS.index(syslog.group(1)) + 1, int(syslog.group(2)))
        text = syslog.group(3)
    if _TIME_ONLY.match(text):
        parts = text.split(":")
        sec = float(parts[2]) if len(parts) > 2 else 0.0
        if int(parts[0]) > 23 or int(parts[1]) > 59 or sec >= 60:
            raise UsageError(f"--changed-at {value!r}: no such time of day")
        return ChangeSpec(value, file or None, None, (int(parts[0]), int(parts[1]), sec), month_day)
    try:
        return ChangeSpec(value, file or None, float(text), None)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(
            f"--changed-at {value!r}: use POSIX seconds, ISO 8601 "
            "(2018-04-09T06:26:00), 'Apr  9 06:26:00' or HH:MM[:SS]"
        ) from exc
    return ChangeSpec(value, file or None, stamp.timestamp(), None)


def _resolve_time(spec: ChangeSpec, first_event_at: float) -> float:
    if spec.at is not None:
        return spec.at
    assert spec.time_of_day is not None
    hour, minute, sec = spec.time_of_day
    first = datetime.fromtimestamp(first_event_at)
    day = first
    if spec.month_day is not None:
        day = first.replace(month=spec.month_day[0], day=spec.month_day[1])
    stamp = day.replace(hour=hour, minute=minute, second=int(sec), microsecond=int((sec % 1) * 1e6))
    if spec.month_day is None and stamp < first.replace(microsecond=0):
        stamp += timedelta(days=1)
    return stamp.timestamp()


def load_facts(config_dir: str | None, max_idle: float | None) -> ConfigFacts:
    """Facts of the configuration directory, or the stock services when none is given."""
    if config_dir is None:
        services = default_services() if max_idle is None else default_services(max_idle)
        digest = hashlib.sha256(b"stock").hexdigest()[:16]
        return ConfigFacts(config_dir="", digest=digest, parameters={}, services=services)
    if not Path(config_dir).is_dir():
        raise SourceUnavailable(config_dir, "not a directory")
    # the configuration parser loads only when a directory is given (explain's start-up)
    from pfwatch.config.facts import facts_from_snapshot  # noqa: PLC0415
    from pfwatch.config.snapshot import build_snapshot  # noqa: PLC0415

    facts = facts_from_snapshot(build_snapshot(config_dir))
    if max_idle is not None:
        facts = replace(
            facts,
            services=tuple(
                replace(s, max_idle=max_idle) if "max_idle" not in s.overrides else s
                for s in facts.services
            ),
        )
    return facts


def change_event(spec: ChangeSpec, at: float, facts: ConfigFacts, n: int) -> ConfigChanged:
    """What we know of an edit given only its time and maybe its file."""
    file = spec.file
    parameters: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    tables: tuple[TableEdit, ...] = ()
    if file is None or file.endswith("main.cf"):
        parameters = (ALL,)
    elif "/" not in file and not file.endswith(".cf"):
        parameters = tuple(p.strip() for p in file.split(",") if p.strip())
        file = "main.cf"
    elif file.endswith("master.cf"):
        services = ("master.cf",)
    else:
        edit = _table_for(file, facts)
        if edit is None:
            parameters = (ALL,)
        else:
            tables = (edit,)
    return ConfigChanged(
        at=at,
        change_id=f"explain-{n}",
        files=(file or "main.cf",),
        parameters=parameters,
        services=services,
        tables=tables,
        facts=facts,
        summary=(f"--changed-at {spec.text}",),
    )


def _table_for(file: str, facts: ConfigFacts) -> TableEdit | None:
    compiled = file.endswith(COMPILED_SUFFIXES)
    source = file
    for ext in COMPILED_SUFFIXES:
        if compiled and file.endswith(ext):
            source = file[: -len(ext)]
    for table in facts.tables:
        if source in (table.source, table.ref) or file == table.compiled:
            indexed = table_type(table.type).needs_postmap
            return TableEdit(
                ref=table.ref,
                type=table.type,
                source=table.source,
                compiled=table.compiled,
                source_changed=not compiled,
                compiled_changed=compiled or not indexed,
                parameters=table.parameters,
            )
    params = tuple(
        sorted(
            name
            for name, value in facts.parameters.items()
            if source in value.replace(",", " ").split()
            or any(tok.endswith(":" + source) for tok in value.split())
        )
    )
    if not params:
        return None
    ref = next(
        (
            tok.strip(",")
            for name in params
            for tok in facts.parameters[name].split()
            if tok.strip(",").endswith(source)
        ),
        source,
    )
    _, kind, _ = split_ref(ref)
    indexed = table_type(kind).needs_postmap
    return TableEdit(
        ref=ref,
        type=kind,
        source=source,
        compiled=None,
        source_changed=not compiled,
        compiled_changed=compiled or not indexed,
        parameters=params,
    )


def _events(logs: Iterator[Event], specs: list[ChangeSpec], facts: ConfigFacts) -> Iterator[Event]:
    """The log events in file order (memory stays bounded), with the changes merged in."""
    head = next(logs, None)
    if head is None:
        return
    first = head.at
    yield ConfigSnapshotTaken(at=first, facts=facts)
    changes = sorted((_resolve_time(s, first), i, s) for i, s in enumerate(specs))
    last = first
    for event in itertools.chain([head], logs):
        while changes and changes[0][0] <= event.at:
            at, i, spec = changes.pop(0)
            yield change_event(spec, at, facts, i + 1)
        if event.at > last:  # noqa: PLR1730 - max() costs a call per line
            last = event.at
        yield event
    for at, i, spec in changes:
        yield change_event(spec, at, facts, i + 1)
    yield Tick(at=max([last, *(c[0] for c in changes)]))


def _in_time_order(logs: list[str], reference: float | None, tz: tzinfo | None) -> list[str]:
    """Plain files ordered by their first timestamp (``mail.log mail.log.1`` in any order)."""
    if len(logs) < 2 or any(p == "-" or Path(p).is_dir() for p in logs):
        return logs
    firsts: dict[str, float] = {}
    for path in logs:
        probe = LogClassifier(reference_time=reference, tz=tz)
        head = next(iter(iter_log_events([path], probe)), None)
        firsts[path] = head.at if head is not None else float("inf")
    return sorted(logs, key=lambda p: firsts[p])


def _tracked(
    events: Iterable[LogEvent], tracks: dict[str, releases.ReleaseTrack]
) -> Iterator[Event]:
    """The events unchanged; every master start or reload tells the track of its instance
    (a log of a multi-instance host has one master per instance) its version."""
    for event in events:
        if event.kind in ("master_started", "master_reloaded") and event.fields.get("version"):
            track = tracks.get(event.instance)
            if track is None:
                track = tracks[event.instance] = releases.ReleaseTrack()
            track.observe(event.fields["version"], event.at)
        yield event


def _release_summary(
    tracks: dict[str, releases.ReleaseTrack], configured: str | None
) -> dict[str, Any]:
    """The release of the log (its ``postfix`` instance's, else the first instance seen);
    with several instances, each one's under ``instances``."""
    main = tracks.get("postfix") or next(iter(tracks.values()), releases.ReleaseTrack())
    summary = main.summary(configured=configured)
    if len(tracks) > 1:
        summary["instances"] = {
            name: track.summary(configured=configured) for name, track in tracks.items()
        }
    return summary


def _label_releases(doc: dict[str, Any], tracks: dict[str, releases.ReleaseTrack]) -> None:
    """A log that mixes releases: each process gets the release its instance ran at its
    birth (the engine reports each upgrade as a ``postfix_upgraded`` master event)."""
    if all(len(track.seen) < 2 for track in tracks.values()):
        return

    def labelled(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for proc in rows:
            born = proc["born_at"] if proc["born_at"] is not None else proc["first_seen_at"]
            track = tracks.get(proc["instance"])
            proc["postfix_release"] = track.release_at(born) if track is not None else None
            yield proc

    rows = doc["processes"]
    # lazy rows (explain --json) are labelled as they are written
    doc["processes"] = list(labelled(rows)) if isinstance(rows, list) else labelled(rows)


def explain_document(
    logs: list[str],
    *,
    config_dir: str | None = None,
    changed_at: tuple[str, ...] = (),
    max_idle: float | None = None,
    year: int | None = None,
    keep_unrecognized: int = 0,
    tz: tzinfo | None = None,
    parallel: bool = False,
    lazy_rows: bool = False,
    postfix_version: str | None = None,
) -> dict[str, Any]:
    """Replay ``logs`` and return the explain document (the API behind the command).

    ``tz`` is the zone of log timestamps without an offset (default: this machine's).
    ``postfix_version`` is the operator's word on the release, trusted less than the log.
    ``parallel``: classify in a worker process (:mod:`pfwatch.maillog.worker`; the
    document is the same, but on two cores it is slower than in-process today).
    ``lazy_rows``: ``processes`` is an iterator (see :func:`write_json`).
    """
    specs = [parse_changed_at(v) for v in changed_at]
    reference = time.mktime((year, 12, 31, 23, 59, 59, 0, 0, -1)) if year else None
    # coalescing drops only repeats that cannot change a finding (see LogClassifier)
    options: dict[str, Any] = {
        "reference_time": reference, "keep_unrecognized": keep_unrecognized, "tz": tz,
        "coalesce_activity": True,
    }  # fmt: skip
    ordered = _in_time_order(logs, reference, tz)
    logged: Iterable[LogEvent]
    if parallel:
        reader = WorkerReader(ordered, **options)  # classifies on the other core
        logged = reader.events()
        stats: Callable[[], LineStats] = lambda: reader.stats  # noqa: E731
    else:
        classifier = LogClassifier(**options)
        logged = iter_log_events(ordered, classifier)
        stats = lambda: classifier.stats  # noqa: E731
    tracks: dict[str, releases.ReleaseTrack] = {}
    events: Iterator[Event] = _tracked(logged, tracks)
    facts = load_facts(config_dir, max_idle)
    settings = Settings()
    if max_idle is not None:
        settings.max_idle = max_idle
    state = EngineState(settings=settings)
    digest = report.FindingDigest()  # memory stays bounded: no list of every finding
    step = fold.step
    for event in _events(events, specs, facts):
        found = step(state, event)
        if found:
            digest.extend(found)
    doc = report.build_document(state, digest, stats().to_json(), lazy_rows=lazy_rows)
    doc["postfix_release"] = _release_summary(tracks, postfix_version)
    _label_releases(doc, tracks)
    if keep_unrecognized:
        doc["unrecognized_lines"] = list(stats().unrecognized_samples)
    return doc


_JSON = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
_ROWS_PLACEHOLDER = "\x00pfwatch: the process rows\x00"


def write_json(doc: dict[str, Any], out: BinaryIO) -> None:
    """Write ``doc`` as indented JSON (moments in RFC 3339: :func:`machine_times`), its
    ``processes`` rows one at a time.

    The rows are most of a busy log's document: made and written one by one, they never
    all sit in memory (nor does their text). The text is what one ``orjson.dumps`` of the
    whole document writes.
    """
    rows = doc["processes"]
    head = machine_times({**doc, "processes": _ROWS_PLACEHOLDER})
    text = orjson.dumps(head, option=_JSON)
    before, after = text.split(orjson.dumps(_ROWS_PLACEHOLDER), 1)
    out.write(before + b"[")
    separator = b"\n"
    for row in rows:
        row_text = orjson.dumps(machine_times(row), option=_JSON)
        out.write(separator + b"    " + row_text.replace(b"\n", b"\n    "))
        separator = b",\n"
    out.write((b"]" if separator == b"\n" else b"\n  ]") + after + b"\n")


def _demo_paths() -> tuple[Path, dict[str, Any]]:
    root = resources.files("pfwatch").joinpath("demo")
    log = Path(str(root.joinpath("scenario.log")))
    meta_path = Path(str(root.joinpath("scenario.json")))
    if not log.is_file():
        raise SourceUnavailable(
            "pfwatch/demo/scenario.log", "the recorded demo scenario is not shipped in this build"
        )
    meta: dict[str, Any] = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SourceUnavailable(str(meta_path), f"unreadable scenario: {exc}") from exc
    return log, meta


def _zone(name: object) -> tzinfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _demo_changes(meta: dict[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for item in meta.get("changes", meta.get("changed_at", [])):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and "at" in item:
            target = str(item.get("file") or "")
            if target.endswith("main.cf") and item.get("parameter"):
                target = str(item["parameter"])
            out.append(f"{item['at']}={target}" if target else str(item["at"]))
    return tuple(out)


@click.command("explain")
@click.argument("logs", nargs=-1, type=click.Path(dir_okay=True, allow_dash=True))
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False),
    help="Postfix configuration directory the log was written under.",
)
@click.option(
    "--changed-at",
    "changed_at",
    multiple=True,
    metavar="TIME[=WHAT]",
    help="When something was edited; repeat. TIME: POSIX seconds, ISO 8601, 'Apr  9 "
    "06:26:00' or HH:MM[:SS]. WHAT: a file (main.cf, master.cf, a table or file list) or "
    "main.cf parameter names (smtpd_banner,myhostname). See docs/explain-json.md.",
)
@click.option("--max-idle", type=float, help="max_idle in seconds (default: config or 100).")
@click.option("--year", type=int, help="Year of syslog dates without one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--unrecognized", is_flag=True, help="Also print Postfix lines not understood.")
@click.option("--demo", is_flag=True, help="Replay the recorded scenario shipped with pfwatch.")
@click.option(
    "--postfix-version",
    envvar=releases.ENV_VAR,
    default=None,
    help=f"Postfix release, when the log has no 'daemon started' line [env: {releases.ENV_VAR}].",
)
def explain(
    *,
    logs: tuple[str, ...],
    config_dir: str | None,
    changed_at: tuple[str, ...],
    max_idle: float | None,
    year: int | None,
    as_json: bool,
    unrecognized: bool,
    demo: bool,
    postfix_version: str | None = None,
) -> int:
    """Explain a maillog: every process's life and when each edit went live, and why."""
    paths = list(logs)
    zone: tzinfo | None = None
    if demo:
        log, meta = _demo_paths()
        paths = [str(log)]
        changed_at = changed_at or _demo_changes(meta)
        max_idle = max_idle if max_idle is not None else meta.get("max_idle")
        year = year or meta.get("year")
        zone = _zone(meta.get("timezone"))
        if config_dir is None and meta.get("config_dir"):
            config_dir = str(log.parent / str(meta["config_dir"]))
    if not paths:
        raise UsageError("explain: give at least one LOG file (or --demo)")
    doc = explain_document(
        paths,
        config_dir=config_dir,
        changed_at=changed_at,
        max_idle=max_idle,
        year=year,
        keep_unrecognized=10_000 if unrecognized else 0,
        tz=zone,
        lazy_rows=as_json,
        postfix_version=postfix_version,
    )
    if as_json:
        # orjson writes a busy log's document (tens of MB) about 10x faster than json
        sys.stdout.flush()
        write_json(doc, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        from pfwatch.sinks.narrative import render  # noqa: PLC0415 - rich, for text only

        render(doc, show_unrecognized=unrecognized)
    return int(ExitStatus.OK)
