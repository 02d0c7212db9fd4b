"""The schema of the state database: ordered migrations.

Inputs: none. Outputs: ``MIGRATIONS`` (SQL scripts; migration N brings ``schema_version``
from N-1 to N, applied in order by :mod:`pfwatch.store.sqlite`) and ``SCHEMA_VERSION``.
Errors: none. Never edit a released migration; append a new one.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema.
    """
    CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        taken_at REAL NOT NULL,
        digest TEXT NOT NULL,
        json TEXT NOT NULL
    );
    CREATE TABLE changes (
        change_id TEXT PRIMARY KEY,
        detected_at REAL NOT NULL,
        files TEXT NOT NULL DEFAULT '[]',
        summary TEXT NOT NULL DEFAULT '{}',
        predicted_live_at REAL,
        live_at REAL,
        needs TEXT NOT NULL DEFAULT '[]',
        basis TEXT NOT NULL DEFAULT 'observed'
    );
    CREATE TABLE events_emitted (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        at REAL NOT NULL,
        basis TEXT NOT NULL,
        data TEXT NOT NULL,
        committed_at REAL NOT NULL,
        emitted INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX events_emitted_pending ON events_emitted (emitted) WHERE emitted = 0;
    CREATE TABLE positions (
        source TEXT PRIMARY KEY,
        position TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE engine_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        json TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
)
"""Ordered schema migrations; migration N brings ``schema_version`` from N-1 to N."""

SCHEMA_VERSION = len(MIGRATIONS)
