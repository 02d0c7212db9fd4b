"""The JSON-lines event sink: field order, timestamps, ids, redaction, console mode."""

from __future__ import annotations

import io
import json
import threading

from pfwatch.events import Finding, event_id_for, rfc3339_utc
from pfwatch.service.log_setup import SecretRedactor
from pfwatch.sinks.base import FanOut, Sink
from pfwatch.sinks.events_json import EventsJsonSink, event_record

LIVE = Finding(
    "change_live",
    1_700_000_000.25,
    "observed",
    {"live_at": 1_700_000_000.25, "change_id": "c42", "services": ["smtp/inet"]},
)


def test_rfc3339_utc_is_utc_with_z_and_microseconds() -> None:
    assert rfc3339_utc(0.0) == "1970-01-01T00:00:00.000000Z"
    assert rfc3339_utc(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"


def test_line_has_fixed_head_then_sorted_data() -> None:
    out = io.StringIO()
    EventsJsonSink(out).emit(LIVE)
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    record = json.loads(line)
    assert list(record) == ["event", "ts", "event_id", "basis", "change_id", "live_at", "services"]
    assert record["event"] == "change_live"
    assert record["ts"] == "2023-11-14T22:13:20.250000Z"
    assert record["live_at"] == record["ts"]
    assert record["basis"] == "observed"
    assert record["event_id"] == event_id_for(LIVE)


def test_event_id_is_stable_and_distinguishes_inputs() -> None:
    same = Finding(LIVE.name, LIVE.at, LIVE.basis, dict(reversed(list(LIVE.data.items()))))
    other = Finding(LIVE.name, LIVE.at, LIVE.basis, {**LIVE.data, "change_id": "c43"})
    later = Finding(LIVE.name, LIVE.at + 0.001, LIVE.basis, LIVE.data)
    assert event_id_for(same) == event_id_for(LIVE)
    assert len({event_id_for(LIVE), event_id_for(other), event_id_for(later)}) == 3
    explicit = Finding("x", 1.0, "observed", {"event_id": "log:/var/log/mail.log:1234"})
    assert event_id_for(explicit) == "log:/var/log/mail.log:1234"
    assert "event_id" in event_record(explicit)
    assert list(event_record(explicit)).count("event_id") == 1


def test_data_keys_that_clash_with_head_fields_are_prefixed() -> None:
    record = event_record(Finding("x", 1.0, "inferred", {"event": "y", "basis": "z"}))
    assert record["event"] == "x" and record["data_event"] == "y"
    assert record["basis"] == "inferred" and record["data_basis"] == "z"
    same = event_record(Finding("x", 1.0, "inferred", {"basis": "inferred", "pid": 7}))
    assert list(same) == ["event", "ts", "event_id", "basis", "pid"]


def test_sets_and_tuples_become_lists() -> None:
    record = event_record(Finding("x", 1.0, "observed", {"a": ("p", "q"), "b": {"z", "y"}}))
    assert record["a"] == ["p", "q"] and record["b"] == ["y", "z"]


def test_redaction_hook_masks_secrets() -> None:
    out = io.StringIO()
    redactor = SecretRedactor()
    sink = EventsJsonSink(out, redact=redactor.redact)
    sink.emit(Finding("config_error", 1.0, "observed", {"password": "hunter2", "path": "/x"}))
    record = json.loads(out.getvalue())
    assert record["password"] == "<redacted>" and record["path"] == "/x"
    assert "hunter2" not in out.getvalue()


def test_concurrent_emitters_never_interleave_lines() -> None:
    out = io.StringIO()
    sink = EventsJsonSink(out)

    def burst(n: int) -> None:
        for i in range(300):
            sink.emit(Finding("process_exited", float(i), "observed", {"pid": n, "pad": "x" * 200}))

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1200
    assert all(json.loads(line)["event"] == "process_exited" for line in lines)
    assert sink.emitted == 1200


def test_fan_out_is_a_sink_and_reaches_every_sink() -> None:
    outs = [io.StringIO(), io.StringIO()]
    fan = FanOut(EventsJsonSink(out) for out in outs)
    assert isinstance(fan, Sink)
    fan.emit(LIVE)
    fan.close()
    assert outs[0].getvalue() == outs[1].getvalue() != ""


def test_non_finite_numbers_become_null() -> None:
    finding = Finding(
        "change_detected",
        1.0,
        "observed",
        {"predicted_live_at": float("inf"), "ratio": float("nan"), "nested": [float("-inf")]},
    )
    out = io.StringIO()
    EventsJsonSink(out).emit(finding)
    record = json.loads(out.getvalue())
    assert record["predicted_live_at"] is None and record["ratio"] is None
    assert record["nested"] == [None]
    assert "NaN" not in out.getvalue() and "Infinity" not in out.getvalue()
    assert event_id_for(finding) == event_id_for(finding)
