"""Test helper: follow a log into an SQLite database until killed.

Usage: ``python follow_into_sqlite.py LOG DB``. Prints ``ready`` once following.

Exactly-once across ``kill -9`` holds because each delivered line and the position after
it are committed in ONE transaction. With two separate files neither order works:
writing the line first and the position second repeats the line when the process dies
between the two writes; writing the position first loses the line. (The other correct
design is an idempotent output keyed by the position, e.g. ``INSERT OR IGNORE`` with the
position token as the key.) WAL with ``synchronous=NORMAL`` survives a killed process; it
would take ``FULL`` to also survive a power cut, which this test does not simulate.
"""

from __future__ import annotations

import sqlite3
import sys
import threading

from pfwatch.sources.follow import Follower


def main(log: str, db: str) -> None:
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE IF NOT EXISTS lines (n INTEGER PRIMARY KEY, data BLOB)")
    con.execute("CREATE TABLE IF NOT EXISTS position (id INTEGER PRIMARY KEY, token TEXT)")
    row = con.execute("SELECT token FROM position WHERE id = 1").fetchone()
    follower = Follower(
        log,
        row[0] if row else None,
        start="beginning",
        rotate_wait=0.0,
        partial_timeout=None,
        poll_interval=0.005,
    )
    print("ready", flush=True)
    for line in follower.follow(threading.Event()):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO lines (data) VALUES (?)", (line.data,))
        con.execute("INSERT OR REPLACE INTO position VALUES (1, ?)", (line.checkpoint,))
        con.execute("COMMIT")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
