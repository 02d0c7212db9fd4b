"""Run ``pfwatch watch`` as a subprocess against a private Postfix and read what it says.

Used by the real-Postfix tests of the watch service and by bench/watch_bench.py. The
event stream goes to a file (stdout redirected, or ``--events-file``) that the helpers
parse; /metrics is scraped over HTTP on a free port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

from pfwatch.instance.local import free_port

Event = dict[str, Any]


class WatchProcess:
    """One ``pfwatch watch`` child process."""

    def __init__(
        self,
        config_dir: Path,
        maillog: Path,
        state_dir: Path,
        out: Path,
        *,
        events_file: Path | None = None,
        extra: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.out = out
        self.events_path = events_file or out
        argv = [
            sys.executable,
            "-m",
            "pfwatch",
            "watch",
            "--config-dir",
            str(config_dir),
            "--maillog",
            str(maillog),
            "--state-dir",
            str(state_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--debounce",
            "0.1",
            *extra,
        ]
        if events_file is not None:
            argv += ["--events-file", str(events_file)]
        env = {**os.environ, "PFWATCH_LOG_FORMAT": "json"}
        self._stdout: IO[bytes] = out.open("ab")
        self.proc = subprocess.Popen(argv, stdout=self._stdout, stderr=subprocess.STDOUT, env=env)

    def events(self) -> list[Event]:
        """Every finding line written so far (diagnostics without ``event_id`` skipped)."""
        found: list[Event] = []
        try:
            text = self.events_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return found
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "event_id" in record:
                found.append(record)
        return found

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 15.0, what: str = ""
    ) -> Event:
        """The first event matching ``predicate``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events():
                if predicate(event):
                    return event
            if self.proc.poll() is not None:
                raise AssertionError(f"pfwatch exited ({self.proc.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no event {what} within {timeout}s:\n{self.tail()}")
            time.sleep(0.05)

    def wait_started(self, timeout: float = 30.0) -> Event:
        return self.wait_for(lambda e: e["event"] == "watch_started", timeout, "watch_started")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Samples of /metrics: (name, sorted labels) -> value."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def get_json(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.out.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._stdout.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._stdout.close()


def metric(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))
