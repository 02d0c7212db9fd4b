"""Builders for hand-made event streams, to drive the core in tests without Postfix.

``StreamBuilder`` keeps a clock of its own and appends events the way the log, the
/proc poller and the configuration watcher would produce them. Inputs: the test's calls.
Outputs: a list of :data:`pfwatch.events.Event`. Errors: ``ValueError`` when time is
moved backwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from pfwatch.events import (
    ConfigChanged,
    ConfigFacts,
    ConfigSnapshotTaken,
    Event,
    LogEvent,
    ProcessInfo,
    ProcessTableSeen,
    ServiceFacts,
    TableEdit,
    Tick,
)
from pfwatch.knowledge.defaults import default_services


def make_facts(
    parameters: Mapping[str, str] | None = None,
    *,
    max_idle: float = 100.0,
    max_use: int = 100,
    services: Iterable[ServiceFacts] | None = None,
    config_dir: str = "/etc/postfix",
) -> ConfigFacts:
    """ConfigFacts with the stock master.cf services unless ``services`` is given."""
    params = dict(parameters or {})
    svc = tuple(services) if services is not None else default_services(max_idle, max_use)
    digest = hashlib.sha256(repr((sorted(params.items()), svc)).encode()).hexdigest()[:16]
    return ConfigFacts(config_dir=config_dir, digest=digest, parameters=params, services=svc)


class StreamBuilder:
    """Append events at a moving time; ``events`` is the stream so far."""

    def __init__(self, start: float = 1_000_000.0, instance: str = "postfix") -> None:
        self.now = start
        self.instance = instance
        self.events: list[Event] = []
        self._changes = 0

    def at(self, when: float) -> StreamBuilder:
        if when < self.now:
            raise ValueError(f"time goes backwards: {when} < {self.now}")
        self.now = when
        return self

    def wait(self, seconds: float) -> StreamBuilder:
        return self.at(self.now + seconds)

    def log(
        self, kind: str, daemon: str, pid: int, service: str = "", **fields: str
    ) -> StreamBuilder:
        self.events.append(
            LogEvent(
                at=self.now,
                kind=kind,
                program=f"postfix/{daemon}",
                instance=self.instance,
                service=service,
                daemon=daemon,
                pid=pid,
                fields=dict(fields),
            )
        )
        return self

    def session(
        self,
        pid: int,
        *,
        duration: float = 1.0,
        daemon: str = "smtpd",
        service: str = "",
        client: str = "client[127.0.0.1]",
        queue_id: str = "",
    ) -> StreamBuilder:
        """One SMTP session: connect, optional queued message, disconnect."""
        self.log("session_connect", daemon, pid, service=service, client=client)
        if queue_id:
            self.wait(duration / 2).log(
                "message_activity", daemon, pid, service=service, queue_id=queue_id
            )
            self.wait(duration / 2)
        else:
            self.wait(duration)
        return self.log(
            "session_disconnect", daemon, pid, service=service, client=client, commands="5"
        )

    def message(self, daemon: str, pid: int, queue_id: str, service: str = "") -> StreamBuilder:
        """A per-message line (cleanup, qmgr, delivery agents)."""
        return self.log("message_activity", daemon, pid, service=service, queue_id=queue_id)

    def master(self, kind: str, pid: int = 1, **fields: str) -> StreamBuilder:
        return self.log(kind, "master", pid, **fields)

    def snapshot(self, facts: ConfigFacts) -> StreamBuilder:
        self.events.append(ConfigSnapshotTaken(at=self.now, facts=facts))
        return self

    def change(
        self,
        facts: ConfigFacts,
        *,
        parameters: Iterable[str] = (),
        files: Iterable[str] = ("main.cf",),
        services: Iterable[str] = (),
        tables: Iterable[TableEdit] = (),
        change_id: str = "",
    ) -> StreamBuilder:
        self._changes += 1
        self.events.append(
            ConfigChanged(
                at=self.now,
                change_id=change_id or f"c{self._changes}",
                files=tuple(files),
                parameters=tuple(parameters),
                services=tuple(services),
                tables=tuple(tables),
                facts=facts,
            )
        )
        return self

    def procs(self, rows: Iterable[tuple[str, int, float]], service: str = "") -> StreamBuilder:
        """A complete /proc poll: rows of (daemon, pid, started_at)."""
        self.events.append(
            ProcessTableSeen(
                at=self.now,
                processes=tuple(
                    ProcessInfo(
                        pid=pid,
                        daemon=daemon,
                        service=service,
                        instance=self.instance,
                        started_at=started,
                    )
                    for daemon, pid, started in rows
                ),
            )
        )
        return self

    def tick(self, when: float | None = None) -> StreamBuilder:
        if when is not None:
            self.at(when)
        self.events.append(Tick(at=self.now))
        return self


def table_edit(
    ref: str,
    parameters: Iterable[str],
    *,
    source_changed: bool = True,
    compiled_changed: bool = True,
) -> TableEdit:
    """A TableEdit for ``ref`` (``hash:/etc/postfix/x`` or a bare file-list path)."""
    kind, _, name = ref.rpartition(":") if ":" in ref else ("file", "", ref)
    kind = kind.split(":")[-1]
    compiled = {"hash": ".db", "btree": ".db", "cdb": ".cdb", "lmdb": ".lmdb"}.get(kind)
    return TableEdit(
        ref=ref,
        type=kind,
        source=name,
        compiled=name + compiled if compiled else None,
        source_changed=source_changed,
        compiled_changed=compiled_changed,
        parameters=tuple(parameters),
    )
