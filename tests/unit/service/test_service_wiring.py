"""The service parts wired as ``pfwatch watch`` wires them, with real threads and files.

A rename-into-place of main.cf reaches the debounced watcher; a stand-in for the engine
turns the burst into a ``change_detected`` finding; the outbox commits it with the
position and hands it to the JSON stream and the metrics; /metrics, /healthz and
``pfwatch history`` then show it. Restarting on the same state directory re-emits nothing.
"""

from __future__ import annotations

import io
import json
import queue
import urllib.request
from pathlib import Path

from pfwatch.events import Finding
from pfwatch.sinks.base import FanOut
from pfwatch.sinks.events_json import EventsJsonSink
from pfwatch.sinks.http import HttpEndpoint, health_from
from pfwatch.sinks.metrics import MetricsSnapshot, PfwatchMetrics
from pfwatch.sources.base import SourceStatus
from pfwatch.sources.files import DirectoryWatcher
from pfwatch.store.outbox import Outbox
from pfwatch.store.sqlite import StateStore
from pfwatch.testing.cli import run_pfwatch


def run_once(conf: Path, state: Path, edit: bool) -> tuple[list[dict[str, object]], str]:
    out = io.StringIO()
    store = StateStore.open(state, exclusive=True)
    snapshot = lambda: MetricsSnapshot(  # noqa: E731
        now=0.0, sources={"config": SourceStatus(True)}, state_ok=outbox.state_ok
    )
    metrics = PfwatchMetrics(snapshot, process_metrics=False)
    outbox = Outbox(store, FanOut([EventsJsonSink(out), metrics]))
    outbox.replay_pending()
    http = HttpEndpoint(
        metrics.registry, dict, lambda: health_from(snapshot()), host="127.0.0.1", port=0
    ).start()
    bursts: queue.Queue[frozenset[str]] = queue.Queue()
    watcher = DirectoryWatcher([conf], bursts.put, quiet=0.1).start()
    try:
        if edit:
            temp = conf / "main.cf.tmp"
            temp.write_text("smtpd_banner = hello\n")
            temp.replace(conf / "main.cf")
            paths = bursts.get(timeout=5)
            finding = Finding(
                "change_detected",
                1_700_000_000.0,
                "observed",
                {"change_id": "edit-1", "files": sorted(paths), "needs": []},
            )
            outbox.deliver([finding], {"config": {"change": 1}})
        else:
            outbox.deliver([], {})
        host, port = http.address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as response:
            assert response.status == 200
    finally:
        watcher.stop()
        http.close()
        store.close()
    return [json.loads(line) for line in out.getvalue().splitlines()], body


def test_edit_to_event_metrics_and_history(tmp_path: Path) -> None:
    conf, state = tmp_path / "postfix", tmp_path / "state"
    conf.mkdir()
    (conf / "main.cf").write_text("smtpd_banner = before\n")

    events, metrics = run_once(conf, state, edit=True)
    assert [e["event"] for e in events] == ["change_detected"]
    assert str(conf / "main.cf") in events[0]["files"]  # type: ignore[operator]
    assert 'pfwatch_events_emitted_total{event="change_detected"} 1.0' in metrics
    assert "pfwatch_state_ok 1.0" in metrics

    again, _ = run_once(conf, state, edit=False)
    assert again == []

    history = run_pfwatch("history", "--state-dir", str(state), "--json")
    assert [c["change_id"] for c in json.loads(history.stdout)] == ["edit-1"]
