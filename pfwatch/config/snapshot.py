"""Snapshots: the parsed state of main.cf, master.cf and every referenced table, hashed.

:func:`build_snapshot` reads a configuration directory as Postfix would (``config_directory``
is that directory, defaults from :func:`pfwatch.config.defaults.postfix_defaults`), finds
the referenced tables (:mod:`pfwatch.config.references`), parses each one
(:mod:`pfwatch.config.tables`) and records content hashes, mtimes, compiled-file
fingerprints and positioned problems per file. When main.cf or master.cf fails to parse
and a previous snapshot is given, the previous parse stays in force for that file
(``FileState.stale``) and the error is kept, as the watcher needs. Secret values are
redacted *before* they enter the snapshot (:mod:`pfwatch.config.redact`), so a stored
snapshot never holds a password.

Inputs: a directory (and optionally the previous :class:`Snapshot`). Outputs:
:class:`Snapshot`, JSON-ready via :func:`snapshot_to_json` / :func:`snapshot_from_json`.
Errors: none for bad or missing files (recorded in ``FileState``);
:class:`~pfwatch.errors.SourceUnavailable` only when the directory itself is unusable.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from pfwatch.config.defaults import ParameterKnowledge, parameter_knowledge
from pfwatch.config.expand import Expander
from pfwatch.config.maincf import decode, parse_main_cf
from pfwatch.config.mastercf import parse_master_cf
from pfwatch.config.model import MainCf, MasterCf, MasterService
from pfwatch.config.redact import is_secret_field as _is_secret_field
from pfwatch.config.redact import redact, redact_entries
from pfwatch.config.references import Freshness, TableRef, discover, freshness
from pfwatch.config.services import expander_for
from pfwatch.config.tables import TableContents, parse_table
from pfwatch.errors import ConfigSyntaxError, SourceUnavailable
from pfwatch.knowledge import releases

SCHEMA = "pfwatch.snapshot/1"

#: Parses kept per (path, sha256 of the bytes), the newest per path: a watcher re-snapshots
#: on every edit and most files did not change (re-parsing an unchanged master.cf cost
#: ~75 ms a snapshot).
PARSE_CACHE_SIZE = 16

_Parsed = TypeVar("_Parsed")


class _ParseMemo(Generic[_Parsed]):
    """A small thread-safe LRU of parse outcomes (a result or the syntax error raised)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], _Parsed | ConfigSyntaxError] = OrderedDict()
        self._lock = threading.Lock()

    def parse(
        self, path: str, digest: str, data: bytes, parse: Callable[[str, str], _Parsed]
    ) -> _Parsed:
        """``parse(text, path)`` of ``data``, or the remembered outcome for these bytes."""
        key = (path, digest)
        with self._lock:
            outcome = self._items.get(key)
            if outcome is not None:
                self._items.move_to_end(key)
        if outcome is None:
            try:
                outcome = parse(decode(data), path)
            except ConfigSyntaxError as exc:
                outcome = exc
            with self._lock:
                # only the newest content of a file is worth keeping: an edited table's
                # earlier parses would otherwise pile up until evicted
                for older in [k for k in self._items if k[0] == path]:
                    del self._items[older]
                self._items[key] = outcome
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        if isinstance(outcome, ConfigSyntaxError):
            raise outcome.with_traceback(None)  # the same error, without stacking tracebacks
        return outcome


#: The same ~1000 parameter names are asked about on every snapshot.
is_secret_field = functools.lru_cache(maxsize=8192)(_is_secret_field)

_MAIN_PARSES: _ParseMemo[MainCf] = _ParseMemo(PARSE_CACHE_SIZE)
_MASTER_PARSES: _ParseMemo[MasterCf] = _ParseMemo(PARSE_CACHE_SIZE)
_TABLE_PARSES: _ParseMemo[TableContents] = _ParseMemo(PARSE_CACHE_SIZE)

KEY_DIFF_LIMIT = 50_000
"""Table sources with more lines are compared by content hash only: parsing a million
lines per edit took ~11 s and ~600 MB, more than a sidecar may spend."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A positioned problem in one file (Postfix would warn or refuse)."""

    path: str
    line: int
    column: int
    message: str


@dataclass(frozen=True, slots=True)
class FileState:
    """One file as read: content hash (None if unreadable), mtime, problems."""

    path: str
    sha256: str | None
    size: int | None = None
    mtime: float | None = None
    error: str | None = None
    problems: tuple[Problem, ...] = ()
    stale: bool = False


@dataclass(frozen=True, slots=True)
class CompiledState:
    """A compiled table file (``.db``, ``.lmdb``...): fingerprint only, never content."""

    path: str
    mtime: float | None
    size: int | None
    inode: int | None


@dataclass(frozen=True, slots=True)
class TableState:
    """A referenced table: where it is, what it holds (secrets redacted), how fresh."""

    ref: TableRef
    freshness: Freshness
    source: FileState | None
    entries: Mapping[str, str] = field(default_factory=dict)
    compiled: tuple[CompiledState, ...] = ()
    entries_skipped: int = 0
    """Lines of a source too large to compare key by key (``KEY_DIFF_LIMIT``); 0 when
    ``entries`` holds the whole table."""


@dataclass(frozen=True, slots=True)
class ParsedFiles:
    """main.cf and master.cf of one read as parsed, with the knowledge and expansion used
    (line numbers and duplicates for lint, the files lab copies). Not stored: a snapshot
    restored from JSON has none."""

    main: MainCf
    master: MasterCf | None
    """None when master.cf could not be read (``postconf -n`` goes on without it)."""
    knowledge: ParameterKnowledge
    expander: Expander


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything pfwatch knows of one configuration directory at ``taken_at``."""

    config_dir: str
    taken_at: float
    files: Mapping[str, FileState]
    parameters: Mapping[str, str]
    expanded: Mapping[str, str]
    depends: Mapping[str, tuple[str, ...]]
    services: tuple[MasterService, ...]
    tables: tuple[TableState, ...]
    digest: str
    parsed: ParsedFiles | None = field(
        default=None, compare=False, repr=False, metadata={"stored": False}
    )
    """Both files as this read parsed them; None when restored, or when either file did not
    parse or could not be read (the last good values then stand in)."""

    @property
    def paths(self) -> tuple[str, ...]:
        """Every file this snapshot depends on (main.cf, master.cf, sources, compiled files).

        A watcher watches the directories of these (editors and postmap replace files).
        """
        found = list(self.files)
        for table in self.tables:
            if table.ref.source is not None:
                found.append(table.ref.source)
            found.extend(table.ref.compiled)
        return tuple(dict.fromkeys(found))

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every problem of every file, by path and line."""
        found = [problem for state in self.files.values() for problem in state.problems]
        for table in self.tables:
            if table.source is not None:
                found.extend(table.source.problems)
        return tuple(sorted(set(found), key=lambda p: (p.path, p.line, p.column, p.message)))


def _read(path: str) -> tuple[bytes | None, FileState]:
    try:
        info = Path(path).stat()
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, FileState(path, None, error="no such file")
    except IsADirectoryError:
        return None, FileState(path, None, error="is a directory")
    except OSError as exc:
        return None, FileState(path, None, error=exc.strerror or str(exc))
    digest = hashlib.sha256(data).hexdigest()
    return data, FileState(path, digest, len(data), info.st_mtime)


def _problem(exc: ConfigSyntaxError) -> Problem:
    return Problem(exc.path, exc.line, exc.column, exc.message)


def _compiled(path: str) -> CompiledState:
    try:
        info = Path(path).stat()
    except OSError:
        return CompiledState(path, None, None, None)
    return CompiledState(path, info.st_mtime, info.st_size, info.st_ino)


def _service_state(service: MasterService) -> MasterService:
    """``service`` with secret ``-o`` values redacted (a stored snapshot holds none)."""
    if not any(is_secret_field(name) for name in service.overrides):
        return service
    overrides = {
        name: (redact(value) if is_secret_field(name) else value)
        for name, value in service.overrides.items()
    }
    return replace(service, overrides=overrides)


def _table_state(ref: TableRef) -> TableState:
    state = freshness(ref)
    compiled = tuple(_compiled(path) for path in ref.compiled)
    if ref.source is None or ref.kind is None:
        return TableState(ref, state, None, {}, compiled)
    data, file_state = _read(ref.source)
    if data is None:
        return TableState(ref, state, file_state, {}, compiled)
    lines = data.count(b"\n")
    if lines > KEY_DIFF_LIMIT:
        return TableState(ref, state, file_state, {}, compiled, entries_skipped=lines)
    kind = ref.kind
    contents = _TABLE_PARSES.parse(
        ref.source,
        f"{kind}\0{_sha(file_state)}",
        data,
        lambda text, path: parse_table(text, kind, path),
    )
    entries = dict(contents.entries)
    if ref.secret or ref.kind == "cf":
        redact_entries(entries, whole_table=ref.secret)
    file_state = replace(file_state, problems=tuple(_problem(p) for p in contents.problems))
    return TableState(ref, state, file_state, entries, compiled)


def _digest(files: Mapping[str, FileState], tables: tuple[TableState, ...]) -> str:
    hasher = hashlib.sha256()
    for path in sorted(files):
        hasher.update(f"{path}\0{files[path].sha256}\n".encode("utf-8", "surrogateescape"))
    for table in tables:
        source = table.source.sha256 if table.source else None
        hasher.update(f"{table.ref.ref}\0{source}\n".encode("utf-8", "surrogateescape"))
        for item in table.compiled:
            hasher.update(f"{item.path}\0{item.mtime}\0{item.size}\0{item.inode}\n".encode())
    return hasher.hexdigest()


def _sha(state: FileState) -> str:
    assert state.sha256 is not None  # set whenever the bytes were read
    return state.sha256


def _load_main(
    path: str, previous: Snapshot | None
) -> tuple[MainCf, FileState, Mapping[str, str] | None]:
    data, state = _read(path)
    if data is None:
        return MainCf(path, {}), state, None
    try:
        return _MAIN_PARSES.parse(path, _sha(state), data, parse_main_cf), state, None
    except ConfigSyntaxError as exc:
        state = replace(state, problems=(_problem(exc),))
        if previous is None:
            return MainCf(path, {}), state, None
        return MainCf(path, {}), replace(state, stale=True), previous.parameters


def _load_master(
    path: str, previous: Snapshot | None
) -> tuple[MasterCf | None, FileState, tuple[MasterService, ...] | None]:
    data, state = _read(path)
    if data is None:
        return None, state, None
    try:
        return _MASTER_PARSES.parse(path, _sha(state), data, parse_master_cf), state, None
    except ConfigSyntaxError as exc:
        state = replace(state, problems=(_problem(exc),))
        if previous is None:
            return None, state, None
        return None, replace(state, stale=True), previous.services


def build_snapshot(
    config_dir: str,
    previous: Snapshot | None = None,
    *,
    taken_at: float = 0.0,
    defaults: Mapping[str, str] | None = None,
    knowledge: ParameterKnowledge | None = None,
) -> Snapshot:
    """Read ``config_dir`` into a :class:`Snapshot` (last good parse kept per file).

    ``knowledge`` is what postconf knows (default: ask postconf, else the shipped facts of
    the release ``PFWATCH_POSTFIX_VERSION`` names)."""
    config_dir = os.path.normpath(Path(config_dir).absolute())
    if not Path(config_dir).exists():  # named as postconf names it: open DIR/main.cf
        raise SourceUnavailable(
            str(Path(config_dir) / "main.cf"), "no such file or directory (no such directory)"
        )
    if not Path(config_dir).is_dir():
        raise SourceUnavailable(config_dir, "not a directory")
    # without a postconf, the facts of the release the operator names (PFWATCH_POSTFIX_VERSION)
    if knowledge is None:
        knowledge = parameter_knowledge(release=os.environ.get(releases.ENV_VAR))
    if defaults is None:
        defaults = knowledge.defaults
    main_path = str(Path(config_dir) / "main.cf")
    master_path = str(Path(config_dir) / "master.cf")
    main, main_state, kept_parameters = _load_main(main_path, previous)
    master, master_state, kept_services = _load_master(master_path, previous)
    # main.cf read and both parsed (a file that failed keeps the last good values instead)
    whole = main_state.sha256 is not None and not main_state.problems and not master_state.problems
    if kept_parameters is not None:
        explicit = dict(kept_parameters)
    else:
        explicit = {name: item.value for name, item in main.parameters.items()}
    lines = {name: item.line for name, item in main.parameters.items()}
    expander = expander_for(explicit, config_dir, defaults, knowledge.raw, main_path, lines=lines)
    expanded: dict[str, str] = {}
    plain: dict[str, str] = {}
    depends: dict[str, tuple[str, ...]] = {}
    problems = list(main_state.problems)
    # process_id and the like describe the postconf process, not the configuration.
    names = tuple(sorted((set(defaults) | set(explicit)) - knowledge.readonly))
    for name in names:
        try:
            value = expander.expand(name)
        except ConfigSyntaxError as exc:
            if name in explicit:  # a default Postfix ships is not the operator's problem
                problems.append(_problem(exc))
            value = expander.raw(name) or ""
        plain[name] = value
        expanded[name] = redact(value) if is_secret_field(name) and value else value
        raw = expander.raw(name) or ""
        if "$" in raw and name not in knowledge.raw:
            depends[name] = tuple(sorted(expander.references(name)))
    main_state = replace(main_state, problems=tuple(problems))
    if kept_services is not None:
        services = kept_services
    else:
        services = tuple(_service_state(s) for s in (master.services if master else ()))
    refs = discover(main, services, expander, names, expanded=plain)
    tables = tuple(_table_state(ref) for ref in refs)
    files = {main_path: main_state, master_path: master_state}
    stored = {name: (redact(v) if is_secret_field(name) else v) for name, v in explicit.items()}
    return Snapshot(
        config_dir=config_dir,
        taken_at=taken_at,
        files=files,
        parameters=stored,
        expanded=expanded,
        depends=depends,
        services=services,
        tables=tables,
        digest=_digest(files, tables),
        parsed=ParsedFiles(main, master, knowledge, expander) if whole else None,
    )


def parsed_files(
    snapshot: Snapshot, *, master_first: bool = False, master_optional: bool = False
) -> ParsedFiles:
    """The snapshot's parsed main.cf and master.cf, or the error that kept it from them.

    ``master_first`` reports master.cf's error before main.cf's (``postconf -M`` reads it
    first); ``master_optional`` accepts a missing master.cf (``postconf -n`` only warns).
    Raises :class:`ConfigSyntaxError` (file, line, column) or :class:`SourceUnavailable`.
    """
    parsed = snapshot.parsed
    if parsed is not None and (parsed.master is not None or master_optional):
        return parsed
    names = ("master.cf", "main.cf") if master_first else ("main.cf", "master.cf")
    for name in names:
        path = str(Path(snapshot.config_dir) / name)
        state = snapshot.files.get(path)
        if state is None:
            continue
        if state.sha256 is None:
            if name == "master.cf" and master_optional:
                continue
            raise SourceUnavailable(path, state.error or "cannot be read")
        for problem in state.problems:
            raise ConfigSyntaxError(problem.path, problem.line, problem.column, problem.message)
    raise SourceUnavailable(snapshot.config_dir, "the configuration was not read from disk")


def snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    """A JSON-ready dict (``json.dumps`` works; lone surrogates are escaped by it)."""
    data: dict[str, Any] = _plain(snapshot)
    data["schema"] = SCHEMA
    return data


_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """What ``dataclasses.asdict`` makes of ``value`` (dataclasses to dicts, tuples and
    mappings rebuilt), without its deep copies of every string: ~5x faster."""
    kind = type(value)
    if kind is str or value is None or kind is float or kind is int or kind is bool:
        return value
    names = _FIELDS.get(kind)
    if names is None and is_dataclass(value):
        names = _FIELDS[kind] = tuple(
            item.name for item in fields(value) if item.metadata.get("stored", True)
        )
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if kind is tuple or kind is list:
        return kind(_plain(item) for item in value)
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    return value


def snapshot_from_json(data: Mapping[str, Any]) -> Snapshot:
    """Inverse of :func:`snapshot_to_json`."""
    if data.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document")

    def file_state(item: Mapping[str, Any]) -> FileState:
        problems = tuple(Problem(**p) for p in item["problems"])
        return FileState(**{**item, "problems": problems})

    def table_state(item: Mapping[str, Any]) -> TableState:
        ref = dict(item["ref"])
        for name in ("compiled", "parameters", "services", "via"):
            ref[name] = tuple(ref[name])
        return TableState(
            ref=TableRef(**ref),
            freshness=Freshness(**item["freshness"]),
            source=file_state(item["source"]) if item["source"] else None,
            entries=dict(item["entries"]),
            compiled=tuple(CompiledState(**c) for c in item["compiled"]),
            entries_skipped=int(item.get("entries_skipped", 0)),
        )

    return Snapshot(
        config_dir=data["config_dir"],
        taken_at=float(data["taken_at"]),
        files={path: file_state(item) for path, item in data["files"].items()},
        parameters=dict(data["parameters"]),
        expanded=dict(data["expanded"]),
        depends={name: tuple(names) for name, names in data["depends"].items()},
        services=tuple(
            MasterService(**{**s, "args": tuple(s["args"]), "overrides": dict(s["overrides"])})
            for s in data["services"]
        ),
        tables=tuple(table_state(t) for t in data["tables"]),
        digest=data["digest"],
    )
