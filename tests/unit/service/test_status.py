"""The metrics and /status views of the engine state, and the source-health transitions."""

from __future__ import annotations

from pfwatch.core.fold import run
from pfwatch.core.state import EngineState
from pfwatch.service.status import SourceHealth, metrics_snapshot, status_document
from pfwatch.sources.base import SourceStatus
from pfwatch.testing.streams import StreamBuilder, make_facts, table_edit

T0 = 1_000_000.0


def engine_with_pending_changes() -> EngineState:
    facts = make_facts({"smtpd_banner": "x"}, max_idle=100.0)
    stream = StreamBuilder(T0).snapshot(facts)
    stream.session(501, duration=1.0)  # an idle smtpd, exits by max_idle later
    stream.wait(5).change(facts, parameters=["smtpd_banner"], change_id="banner")
    stream.wait(1).change(
        facts,
        files=["/etc/postfix/virtual"],
        tables=[
            table_edit("hash:/etc/postfix/virtual", ["virtual_alias_maps"], compiled_changed=False)
        ],
        change_id="virtual",
    )
    state = EngineState()
    run(state, stream.events)
    return state


def test_metrics_snapshot_of_pending_changes() -> None:
    state = engine_with_pending_changes()
    snap = metrics_snapshot(
        state, now=T0 + 10, digest="abc", sources={"maillog": SourceStatus(True)}, state_ok=True
    )
    by_id = {p.change_id: p for p in snap.pending}
    assert set(by_id) == {"banner", "virtual"}
    banner = by_id["banner"]
    assert banner.detected_at == T0 + 6 and banner.needs == ()
    assert banner.services and all(
        when is not None and when > T0 for when in banner.services.values()
    )
    assert "postmap" in by_id["virtual"].needs
    assert sum(snap.stale_processes.values()) >= 1
    assert snap.config_digest == "abc" and snap.sources["maillog"].up


def test_status_document_lists_pending_changes_and_processes() -> None:
    state = engine_with_pending_changes()
    doc = status_document(
        state,
        now=T0 + 10,
        digest="abc",
        sources={"maillog": SourceStatus(False, error="gone")},
        state_ok=False,
        last_events=[{"event": "x"}],
        watch={"config_dir": "/etc/postfix"},
    )
    assert [c["change_id"] for c in doc["pending_changes"]] == ["banner", "virtual"]
    assert 501 in [p["pid"] for p in doc["processes"]]  # (and inferred ones, pid 0)
    assert doc["sources"]["maillog"] == {
        "up": False, "error": "gone", "lag_seconds": None, "lag_bytes": None, "last_line_at": None
    }  # fmt: skip
    assert doc["state_ok"] is False and doc["last_events"] == [{"event": "x"}]


def test_source_health_reports_transitions_once() -> None:
    health = SourceHealth()
    assert health.update("maillog", None, 1.0) == []
    down = health.update("maillog", "gone", 2.0)
    assert [(f.name, f.data["message"]) for f in down] == [("source_unavailable", "gone")]
    assert health.update("maillog", "still gone", 3.0) == []
    assert health.statuses["maillog"].up is False
    back = health.update("maillog", None, 4.0)
    assert [(f.name, f.data["source"]) for f in back] == [("source_recovered", "maillog")]
