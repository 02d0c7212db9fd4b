"""kill -9 at random moments: no finding lost, positions and findings always agree.

A child process plays the watch loop: for input position i it commits one finding with
the position and engine state, writes the line to an output file, then marks it emitted.
The parent kills it with SIGKILL at random moments, restarts it (which first re-emits the
outbox), and finally checks that every position up to the committed one was written out,
each event id at least once, and repeats are only the at-most-one-per-crash window
between writing a line and marking it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from pfwatch.store.sqlite import StateStore

CHILD = r"""
import json, sys
from pfwatch.events import Finding
from pfwatch.store.sqlite import StateStore

state_dir, out_path, stop_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = StateStore.open(state_dir)
with open(out_path, "a", encoding="utf-8") as out:
    def write(event_id, finding):
        out.write(json.dumps({"id": event_id, "pos": finding.data["position"]}) + "\n")
        out.flush()
        store.mark_emitted([event_id])
    for event_id, finding in store.unemitted():
        write(event_id, finding)
    start = store.positions().get("log", 0)
    print("ready", flush=True)
    for pos in range(start + 1, stop_at + 1):
        finding = Finding("process_exited", float(pos), "observed", {"position": pos})
        result = store.commit([finding], {"log": pos}, {"last": pos})
        for event_id, new in result.new:
            write(event_id, new)
"""


def run_child(state: Path, out: Path, stop_at: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state), str(out), str(stop_at)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_kill_minus_nine_loses_nothing(tmp_path: Path) -> None:
    state, out = tmp_path / "state", tmp_path / "events.jsonl"
    rng = random.Random(5)
    rounds, stop_at = 6, 100_000
    for _ in range(rounds):
        child = run_child(state, out, stop_at)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    final = run_child(state, out, 0)  # re-emit the outbox only
    assert final.stdout is not None
    assert final.stdout.readline().strip() == "ready"
    assert final.wait(timeout=30) == 0
    final.stdout.close()

    store = StateStore.open(state)
    committed = store.positions()["log"]
    assert store.engine_state() == {"last": committed}
    assert store.unemitted() == []
    store.close()

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    positions = [line["pos"] for line in lines]
    assert committed > 50, "the child made too little progress to test anything"
    assert set(positions) == set(range(1, committed + 1))
    repeats = len(positions) - len(set(positions))
    assert repeats <= rounds
    by_id = {line["id"]: line["pos"] for line in lines}
    assert len(by_id) == committed
