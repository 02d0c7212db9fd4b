"""Durable state of ``pfwatch watch``: one SQLite database (WAL) under ``--state-dir``.

Inputs: the findings the engine produced, the source positions they were derived from,
the engine's state as JSON, configuration snapshots. Outputs: what was committed, read
back after a restart (positions, engine state, last snapshot, change history, findings
committed but not yet written out). Errors: :class:`pfwatch.errors.StateError` when the
directory or database cannot be used (disk full, read-only, permission denied); the
caller keeps running in memory (:meth:`StateStore.open_in_memory`) and reports it.

Exactly-once emission is an outbox: :meth:`StateStore.commit` stores the findings, the
source positions and the engine state in ONE transaction and returns the findings whose
``event_id`` was not committed before; the caller writes them out and then calls
:meth:`StateStore.mark_emitted`. After ``kill -9`` the caller first re-emits
:meth:`StateStore.unemitted` and resumes reading at :meth:`StateStore.positions`, so no
finding is lost and none is derived twice. A crash between writing a line and marking it
can repeat that one line, with the same ``event_id`` for consumers to drop.

``synchronous=NORMAL`` in WAL mode survives the process being killed at any instant; only
a power loss can drop the last transactions (SQLite "WAL" documentation).

A database that is not a database (garbage bytes, truncated, failed integrity check) is
renamed aside to ``state.sqlite.corrupt-<UTC timestamp>`` and a fresh one is created;
:attr:`StateStore.recovered_from` then names the kept file so the caller can warn loudly.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfwatch.errors import StateError
from pfwatch.events import Finding, event_id_for
from pfwatch.store.history import ChangeRecord, record_change
from pfwatch.store.lock import DirectoryLock
from pfwatch.store.schema import MIGRATIONS, SCHEMA_VERSION

DB_NAME = "state.sqlite"

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "ChangeRecord",
    "CommitResult",
    "Snapshot",
    "StateStore",
    "open_read_only",
]

_CORRUPT_MARKERS = ("not a database", "malformed", "file is encrypted", "corrupt")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored configuration snapshot."""

    id: int
    taken_at: float
    digest: str
    json: str


@dataclass(frozen=True, slots=True)
class CommitResult:
    """Findings of one commit that were new, with their ``event_id``, in commit order."""

    new: tuple[tuple[str, Finding], ...]


class StateStore:
    """The state database. Thread-safe: one connection behind a lock."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.path = path
        self.recovered_from: Path | None = None
        self._dir_lock: DirectoryLock | None = None

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        state_dir: Path | str,
        *,
        now: Callable[[], float] = time.time,
        exclusive: bool = False,
    ) -> StateStore:
        """Open (creating, migrating or recovering) ``state_dir/state.sqlite``.

        With ``exclusive`` (what ``pfwatch watch`` uses), also take the directory lock so
        that two watchers never share a state. Raises StateError when the directory
        cannot be created or written, or is locked by another pfwatch.
        """
        directory = Path(state_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"{directory}: cannot create state directory: {_why(exc)}") from exc
        path = directory / DB_NAME
        lock = DirectoryLock(directory) if exclusive else None
        recovered: Path | None = None
        try:
            try:
                store = cls._open_checked(path)
            except _Corrupt as exc:
                recovered = _set_aside(path, now())
                store = cls._open_checked(path, after_corruption=str(exc))
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        store.recovered_from = recovered
        store._dir_lock = lock
        return store

    @classmethod
    def open_in_memory(cls) -> StateStore:
        """A store that lives only as long as the process (the fallback on StateError)."""
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        store = cls(conn, None)
        store._migrate()
        return store

    @classmethod
    def _open_checked(cls, path: Path, after_corruption: str | None = None) -> StateStore:
        try:
            conn = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None, timeout=5.0
            )
        except sqlite3.Error as exc:
            raise StateError(f"{path}: cannot open state database: {exc}") from exc
        store = cls(conn, path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {row}")
            store._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if after_corruption is None and _is_corruption(exc):
                raise _Corrupt(str(exc)) from exc
            raise StateError(f"{path}: state database unusable: {exc}") from exc
        return store

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        if current > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: state database has schema version {current}, newer than this "
                f"pfwatch understands ({SCHEMA_VERSION}); use a newer pfwatch or another "
                "--state-dir"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[version - 1]):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the database (checkpoints the WAL) and release the directory lock."""
        with self._lock:
            self._conn.close()
        if self._dir_lock is not None:
            self._dir_lock.release()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._read() as conn:
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0])

    # -- the one atomic write ---------------------------------------------------------

    def commit(
        self,
        findings: Sequence[Finding] = (),
        positions: Mapping[str, Any] | None = None,
        engine_state: Any = None,
        *,
        snapshot: tuple[float, str, str] | None = None,
        now: float | None = None,
    ) -> CommitResult:
        """Store findings, source positions, engine state (and a snapshot) atomically.

        ``positions`` maps a source key (e.g. ``"file:/var/log/mail.log"`` or
        ``"journal"``) to a JSON-ready position or cursor; ``engine_state`` is JSON-ready
        (``None`` leaves it unchanged); ``snapshot`` is ``(taken_at, digest, json)``.
        Change findings (``change_detected``, ``change_prediction_updated``,
        ``change_live``) also update the change history. Returns the findings not
        committed before, to be written out and then passed to :meth:`mark_emitted`.
        Raises StateError (nothing is stored) when the database cannot be written.
        """
        stamp = time.time() if now is None else now
        new: list[tuple[str, Finding]] = []
        with self._write() as conn:
            for finding in findings:
                event_id = event_id_for(finding)
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO events_emitted"
                    " (event_id, name, at, basis, data, committed_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        event_id,
                        finding.name,
                        finding.at,
                        finding.basis,
                        _dumps(dict(finding.data)),
                        stamp,
                    ),
                )
                if cursor.rowcount == 1:
                    new.append((event_id, finding))
                    record_change(conn, finding)
            for source, position in (positions or {}).items():
                conn.execute(
                    "INSERT INTO positions (source, position, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (source) DO UPDATE SET position = excluded.position,"
                    " updated_at = excluded.updated_at",
                    (source, _dumps(position), stamp),
                )
            if engine_state is not None:
                conn.execute(
                    "INSERT INTO engine_state (id, json, updated_at) VALUES (1, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET json = excluded.json,"
                    " updated_at = excluded.updated_at",
                    (_dumps(engine_state), stamp),
                )
            if snapshot is not None:
                conn.execute(
                    "INSERT INTO snapshots (taken_at, digest, json) VALUES (?, ?, ?)", snapshot
                )
        return CommitResult(tuple(new))

    def mark_emitted(self, event_ids: Iterable[str]) -> None:
        """Record that these findings were written out (they will not be re-emitted)."""
        ids = [(event_id,) for event_id in event_ids]
        if not ids:
            return
        with self._write() as conn:
            conn.executemany("UPDATE events_emitted SET emitted = 1 WHERE event_id = ?", ids)

    def prune_emitted(self, before: float) -> int:
        """Forget emitted findings committed before ``before``; returns how many."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM events_emitted WHERE emitted = 1 AND committed_at < ?", (before,)
            )
            return cursor.rowcount

    # -- reading back -----------------------------------------------------------------

    def unemitted(self) -> list[tuple[str, Finding]]:
        """Findings committed but not marked emitted (re-emit these first at start-up)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT event_id, name, at, basis, data FROM events_emitted"
                " WHERE emitted = 0 ORDER BY seq"
            ).fetchall()
        return [
            (row[0], Finding(name=row[1], at=row[2], basis=row[3], data=json.loads(row[4])))
            for row in rows
        ]

    def was_committed(self, event_id: str) -> bool:
        """Whether a finding with this ``event_id`` was ever committed (and not pruned)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT 1 FROM events_emitted WHERE event_id = ?", (event_id,)
            ).fetchone()
        return row is not None

    def positions(self) -> dict[str, Any]:
        """Source key → last committed position."""
        with self._read() as conn:
            rows = conn.execute("SELECT source, position FROM positions").fetchall()
        return {source: json.loads(position) for source, position in rows}

    def engine_state(self) -> Any:
        """The last committed engine state, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT json FROM engine_state WHERE id = 1").fetchone()
        return None if row is None else json.loads(row[0])

    def last_snapshot(self) -> Snapshot | None:
        """The most recent configuration snapshot, or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT id, taken_at, digest, json FROM snapshots ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else Snapshot(*row)

    def changes(self, limit: int | None = None) -> list[ChangeRecord]:
        """The change history, oldest first (the newest ``limit`` when given)."""
        query = (
            "SELECT change_id, detected_at, files, summary, predicted_live_at, live_at,"
            " needs, basis FROM changes ORDER BY detected_at DESC, change_id DESC"
        )
        params: tuple[int, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (limit,)
        with self._read() as conn:
            rows = conn.execute(query, params).fetchall()
        return [
            ChangeRecord(
                change_id=row[0],
                detected_at=row[1],
                files=tuple(json.loads(row[2])),
                summary=json.loads(row[3]),
                predicted_live_at=row[4],
                live_at=row[5],
                needs=tuple(json.loads(row[6])),
                basis=row[7],
            )
            for row in reversed(rows)
        ]

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StateError(f"{self._where()}: cannot write state: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise StateError(f"{self._where()}: cannot write state: {exc}") from exc
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StateError(f"{self._where()}: cannot read state: {exc}") from exc

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "in-memory state"


class _Corrupt(Exception):
    """The database file is damaged (internal signal to set it aside)."""


def open_read_only(state_dir: Path | str) -> StateStore | None:
    """Open an existing state database for reading only; None when there is none.

    For commands such as ``pfwatch history`` that must not create, migrate or repair.
    """
    path = Path(state_dir) / DB_NAME
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        conn.execute("SELECT max(version) FROM schema_version").fetchone()
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot read state database: {exc}") from exc
    return StateStore(conn, path)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may have rolled back already (e.g. on SQLITE_FULL): nothing left to undo.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return False  # locked, read-only, full, cannot open: not the file's fault
    text = str(exc).lower()
    return any(marker in text for marker in _CORRUPT_MARKERS) or "integrity" in text


def _set_aside(path: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}.{counter}")
        counter += 1
    try:
        path.rename(target)
        for suffix in ("-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.rename(target.with_name(target.name + suffix))
    except OSError as exc:
        raise StateError(f"{path}: corrupt and cannot be set aside: {_why(exc)}") from exc
    return target


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
