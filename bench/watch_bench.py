"""Benchmark of ``pfwatch watch``: latencies, idle CPU and memory, in one run.

Starts a private Postfix (pfwatch.instance.local.PostfixInstance) and ``pfwatch watch`` as a
subprocess on its configuration directory and on a log file the benchmark writes, with
its stdout on a pipe read by a thread that stamps each line on arrival. Then measures:

1. file write -> ``change_detected``: main.cf renamed into place with a new parameter;
   time from the rename to the event line (``--edits`` samples, ``--debounce`` given to
   pfwatch: the debounce is a deliberate wait and is part of the figure);
2. log line append -> its event: one smtpd ``connect from`` line of a fresh pid; time
   from the write to its ``process_started`` line (``--log-samples`` samples);
3. idle CPU: pfwatch's user+system CPU time over ``--idle`` seconds (default 60) with no
   edits and no log lines, as a percentage of one core;
4. RSS after replaying ``--lines`` log lines (default one million), made by tiling a log
   recorded from a real Postfix (bench/record.py, or ``--recording FILE``) with
   bench/run.py's ``tile``; the lines are appended to the followed log in 1 MB writes and
   RSS is read once pfwatch reports every line read (``pfwatch_log_lines_read_total``).

Prints p50/p99 and the figures with the targets (p99 < 100 ms for both latencies, idle CPU
< 1% of a core, RSS < 80 MB). Needs root and Debian's Postfix. Inputs: options. Output: a
report on stdout. Errors: exits non-zero when pfwatch or Postfix fails. Not a test.
Run: ``.venv/bin/python bench/watch_bench.py [--idle 60] [--lines 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from record import record
from run import tile

from pfwatch.instance.local import PostfixInstance, free_port

FAKE_PID = 3_000_000
Arrival = tuple[float, dict[str, Any]]


class Watch:
    """``pfwatch watch`` with its event lines stamped on arrival."""

    def __init__(self, config_dir: Path, maillog: Path, state: Path, debounce: float) -> None:
        self.port = free_port()
        argv = [
            sys.executable, "-m", "pfwatch", "watch", "--config-dir", str(config_dir),
            "--maillog", str(maillog), "--state-dir", str(state),
            "--listen", f"127.0.0.1:{self.port}", "--debounce", str(debounce),
        ]  # fmt: skip
        env = {**os.environ, "PFWATCH_LOG_FORMAT": "json"}
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
        self.ps = psutil.Process(self.proc.pid)
        self.lines: queue.Queue[Arrival] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in stream:
            now = time.time()
            try:
                self.lines.put((now, json.loads(raw)))
            except ValueError:
                continue

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30) -> Arrival:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit("pfwatch did not report in time")
            try:
                arrival = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(arrival[1]):
                return arrival

    def metric(self, name: str) -> float:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name) and not line.startswith("#"):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _changed(parameter: str, event: dict[str, Any]) -> bool:
    return event.get("event") == "change_detected" and parameter in event.get("parameters", ())


def _started(pid: int, event: dict[str, Any]) -> bool:
    return event.get("event") == "process_started" and event.get("pid") == pid


def edit_latencies(inst: PostfixInstance, watch: Watch, count: int) -> list[float]:
    samples: list[float] = []
    for number in range(count):
        name = f"pfwatch_bench_{number}"
        text = inst.main_cf.read_text() + f"{name} = {number}\n"
        temp = inst.config_dir / ".main.cf.bench"
        temp.write_text(text)
        start = time.time()
        temp.replace(inst.main_cf)
        arrived, _ = watch.wait(partial(_changed, name))
        samples.append(arrived - start)
        time.sleep(0.25)
    return samples


def log_latencies(log: Path, watch: Watch, count: int) -> list[float]:
    samples: list[float] = []
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for number in range(count):
            pid = FAKE_PID + number
            stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
            line = f"{stamp} bench postfix/smtpd[{pid}]: connect from c.example[192.0.2.9]\n"
            start = time.time()
            os.write(fd, line.encode())
            arrived, _ = watch.wait(partial(_started, pid))
            samples.append(arrived - start)
            time.sleep(0.03)
    finally:
        os.close(fd)
    return samples


def replay(tiled: Path, log: Path, watch: Watch, lines: int) -> tuple[float, float]:
    """Append the tiled log; returns (seconds until all read, RSS MB afterwards)."""
    read_before = watch.metric('pfwatch_log_lines_read_total{source="maillog"}')
    start = time.time()
    with tiled.open("rb") as source, log.open("ab") as sink:
        while chunk := source.read(1 << 20):
            sink.write(chunk)
            sink.flush()
    while watch.metric('pfwatch_log_lines_read_total{source="maillog"}') < read_before + lines:
        if watch.proc.poll() is not None:
            raise SystemExit("pfwatch died during the replay")
        time.sleep(0.5)
    seconds = time.time() - start
    time.sleep(1.0)
    return seconds, watch.ps.memory_info().rss / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=40, help="file-write samples")
    parser.add_argument("--log-samples", type=int, default=200, help="log-append samples")
    parser.add_argument("--idle", type=float, default=60.0, help="idle CPU window, seconds")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines to replay")
    parser.add_argument("--recording", type=Path, help="a maillog recorded by bench/record.py")
    parser.add_argument("--sessions", type=int, default=300, help="sessions to record")
    parser.add_argument("--debounce", type=float, default=0.02, help="pfwatch --debounce")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pfwatch-watch-bench-"))
    recording = args.recording
    if recording is None and args.lines:
        print(f"recording {args.sessions} SMTP sessions from a private Postfix ...", flush=True)
        recording = record(work / "recorded.log", args.sessions)
    tiled = work / "replay.log"
    if recording is not None and args.lines:
        total, copies = tile(recording, tiled, args.lines)
        print(f"replay file: {total} lines, {copies} shifted copies of {recording.name}")
    else:
        total = 0
    log = work / "maillog"
    log.touch()
    with PostfixInstance(max_idle=3) as inst:
        watch = Watch(inst.config_dir, log, work / "state", args.debounce)
        try:
            watch.wait(lambda e: e.get("event") == "watch_started", timeout=60)
            time.sleep(1.0)
            edits = edit_latencies(inst, watch, args.edits)
            appends = log_latencies(log, watch, args.log_samples)
            time.sleep(5.0)  # let the inferred exits of the sample sessions settle
            cpu_before, wall_before = watch.cpu_seconds(), time.time()
            time.sleep(args.idle)
            idle = (watch.cpu_seconds() - cpu_before) / (time.time() - wall_before) * 100
            rss_idle = watch.ps.memory_info().rss / 1e6
            replay_seconds, rss = replay(tiled, log, watch, total) if total else (0.0, rss_idle)
        finally:
            watch.stop()
    ms = 1000.0
    print()
    print(f"{'measure':<38} {'p50':>9} {'p99':>9}  target")
    for label, values in (
        (f"file write -> change_detected (n={len(edits)})", edits),
        (f"log append -> process_started (n={len(appends)})", appends),
    ):
        p50, p99 = percentile(values, 0.5) * ms, percentile(values, 0.99) * ms
        verdict = "ok" if p99 < 100 else "MISSED"
        print(f"{label:<38} {p50:7.1f}ms {p99:7.1f}ms  p99 < 100 ms: {verdict}")
    print(f"  (file write figures include --debounce {args.debounce} s; mean "
          f"{statistics.mean(edits) * ms:.1f} ms)")  # fmt: skip
    print(f"idle CPU over {args.idle:.0f} s: {idle:.2f}% of one core  "
          f"target < 1%: {'ok' if idle < 1 else 'MISSED'}")  # fmt: skip
    print(f"RSS idle: {rss_idle:.1f} MB")
    if total:
        print(f"RSS after replaying {total} lines: {rss:.1f} MB  "
              f"target < 80 MB: {'ok' if rss < 80 else 'MISSED'}")  # fmt: skip
        print(f"replay: {replay_seconds:.1f} s = {total / replay_seconds:,.0f} lines/s "
              "(read, classified, folded, committed)")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
