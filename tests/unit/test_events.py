"""The shared vocabulary: the one time format of JSON output and finding identities."""

from __future__ import annotations

import json
import math

from pfwatch.events import (
    Finding,
    event_id_for,
    from_rfc3339,
    is_moment_key,
    machine_times,
    rfc3339_utc,
)
from pfwatch.testing.times import epoch_times

T = 1_700_000_000.25


def test_rfc3339_is_utc_with_microseconds_and_round_trips() -> None:
    assert rfc3339_utc(T) == "2023-11-14T22:13:20.250000Z"
    assert from_rfc3339(rfc3339_utc(T)) == T


def test_moment_keys() -> None:
    assert all(is_moment_key(k) for k in ("at", "ts", "now", "live_at", "earliest", "gone_by"))
    assert not any(is_moment_key(k) for k in ("max_idle", "lag_seconds", "sessions", "rule"))


def test_machine_times_converts_moments_at_any_depth_and_keeps_durations() -> None:
    doc = {
        "now": T,
        "changes": [
            {
                "changed_at": T,
                "live_at": None,
                "routing_cache": {"earliest": T, "latest": T + 30, "reuse_seconds": 30},
                "service_live": {"smtp/inet": T + 1, "pickup/unix": None},
                "prediction": {"stale": [{"earliest": T, "latest": math.inf, "rule": "x"}]},
                "tables": ("hash:/etc/postfix/virtual",),
                "flags": {"b", "a"},
            }
        ],
        "settings": {"max_idle": 100.0, "margin": 0.5},
        "already": "2023-11-14T22:13:20.250000Z",
        "ok": True,
    }
    out = machine_times(doc)
    json.dumps(out)  # JSON-ready
    change = out["changes"][0]
    assert out["now"] == change["changed_at"] == "2023-11-14T22:13:20.250000Z"
    assert change["live_at"] is None
    assert change["routing_cache"] == {
        "earliest": "2023-11-14T22:13:20.250000Z",
        "latest": "2023-11-14T22:13:50.250000Z",
        "reuse_seconds": 30,
    }
    assert change["service_live"] == {
        "smtp/inet": "2023-11-14T22:13:21.250000Z",
        "pickup/unix": None,
    }
    assert change["prediction"]["stale"][0]["latest"] is None  # never
    assert change["tables"] == ["hash:/etc/postfix/virtual"] and change["flags"] == ["a", "b"]
    assert out["settings"] == {"max_idle": 100.0, "margin": 0.5}
    assert out["already"] == doc["already"] and out["ok"] is True
    back = epoch_times(json.loads(json.dumps(out)))
    assert back["now"] == T and back["changes"][0]["routing_cache"]["latest"] == T + 30
    assert back["changes"][0]["service_live"]["smtp/inet"] == T + 1


def test_machine_times_takes_whole_seconds_and_other_keys_as_they_come() -> None:
    out = machine_times({"born_at": 1_700_000_000, 7: T, "until": "never", "at": None})
    assert out == {
        "born_at": "2023-11-14T22:13:20.000000Z",
        "7": T,  # not a moment's name: kept as it is
        "until": "never",
        "at": None,
    }
    rows = [{"exited_at": T + n, "sessions": n} for n in range(3)]  # the kind cache per key
    assert [r["exited_at"] for r in machine_times(rows)] == [rfc3339_utc(T + n) for n in range(3)]


def test_event_id_is_stable_and_explicit_ids_win() -> None:
    finding = Finding("change_live", T, "observed", {"change_id": "c1", "live_at": T})
    same = Finding("change_live", T, "observed", {"live_at": T, "change_id": "c1"})
    assert event_id_for(finding) == event_id_for(same)
    assert event_id_for(finding) != event_id_for(Finding("change_live", T + 1, "observed", {}))
    assert len(event_id_for(finding)) == 24
    explicit = Finding("x", T, "observed", {"event_id": "log:/var/log/mail.log:7"})
    assert event_id_for(explicit) == "log:/var/log/mail.log:7"
