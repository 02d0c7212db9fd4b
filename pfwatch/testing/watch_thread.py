"""``pfwatch watch`` in a thread of the test process, for tests of the service on files.

Inputs: the service's :class:`~pfwatch.settings.Settings` (JSON event lines, a loopback
port). Outputs: the lines it wrote (:meth:`WatchThread.lines`), its findings
(:meth:`WatchThread.events`), waits on them, ``/metrics`` and ``/healthz``. Errors: an
``AssertionError`` when the service stops early or an awaited event does not come.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pfwatch.service.loop import WatchOptions, WatchService
from pfwatch.settings import Settings
from pfwatch.testing.clock import FakeClock

Event = dict[str, Any]


def syslog_line(program: str, pid: int, text: str, daemon: str = "smtpd") -> str:
    """A classic syslog line of ``program/daemon[pid]`` stamped now (local time)."""
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
    return f"{stamp} host {program}/{daemon}[{pid}]: {text}\n"


def append(path: Path, text: str) -> None:
    """Append ``text`` to the file at ``path`` (a log line arriving)."""
    with path.open("a") as handle:
        handle.write(text)


class WatchThread:
    """One ``WatchService`` running in a thread until :meth:`stop`."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: FakeClock | None = None,
        journalctl: str | None = None,
        health_every: float = 0.1,
        poll: float = 0.02,
    ) -> None:
        self.out = io.StringIO()
        self.port = settings.listen_port
        self.poll = poll
        extra: dict[str, Any] = {} if journalctl is None else {"journalctl": journalctl}
        options = WatchOptions(settings=settings, proc=False, health_every=health_every, **extra)
        self.service = WatchService(options, out=self.out, clock=clock)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.service.run()))
        self.thread.start()
        self.wait(lambda e: e.get("event") == "watch_started")

    def lines(self) -> list[Event]:
        """Every JSON line written so far (the service's own log lines too)."""
        return [json.loads(line) for line in self.out.getvalue().splitlines() if line]

    def events(self) -> list[Event]:
        """The findings written so far (lines with an ``event_id``)."""
        return [e for e in self.lines() if "event_id" in e]

    def wait(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """The first finding matching ``predicate``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            assert self.thread.is_alive(), self.out.getvalue()
            time.sleep(self.poll)
        raise AssertionError(f"not seen in time:\n{self.out.getvalue()[-3000:]}")

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def healthz(self) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz") as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def stop(self) -> None:
        self.service.stop()
        self.thread.join(15)
        assert self.result == [0]
