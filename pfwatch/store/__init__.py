"""SQLite (WAL) state of ``pfwatch watch``: snapshots, change history, engine state and
source positions, committed together."""
