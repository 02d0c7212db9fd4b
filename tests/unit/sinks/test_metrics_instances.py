"""Metrics of a multi-instance host: every engine family gets ``postfix_instance``; with
one instance no sample has it."""

from __future__ import annotations

from prometheus_client import generate_latest

from pfwatch.sinks.metrics import MetricsSnapshot, PendingChange, PfwatchMetrics
from pfwatch.sources.base import SourceStatus

PENDING = PendingChange("c1", 50.0, {"smtp/inet": 120.0}, ("reload",))


def _text(snap: MetricsSnapshot) -> str:
    return generate_latest(PfwatchMetrics(lambda: snap, process_metrics=False).registry).decode()


def test_each_instance_is_labelled() -> None:
    busy = MetricsSnapshot(now=100.0, config_digest="d1", pending=(PENDING,), last_reload_at=40.0)
    idle = MetricsSnapshot(now=100.0, config_digest="d2")
    text = _text(
        MetricsSnapshot(
            now=100.0,
            sources={"log": SourceStatus(up=True)},
            instances=(("postfix", busy), ("postfix-out", idle)),
        )
    )
    assert 'pfwatch_config_changes_pending{postfix_instance="postfix"} 1.0' in text
    assert 'pfwatch_config_changes_pending{postfix_instance="postfix-out"} 0.0' in text
    assert (
        'pfwatch_config_changes_pending_action{action="reload",postfix_instance="postfix"} 1.0'
        in text
    )
    assert 'pfwatch_config_info{digest="d2",postfix_instance="postfix-out"} 1.0' in text
    assert (
        "pfwatch_config_change_predicted_live_timestamp_seconds"
        '{master_service="smtp/inet",postfix_instance="postfix"} 120.0' in text
    )
    assert 'pfwatch_postfix_last_reload_timestamp_seconds{postfix_instance="postfix"} 40.0' in text
    assert 'pfwatch_source_up{source="log"} 1.0' in text


def test_one_instance_has_no_instance_label() -> None:
    text = _text(MetricsSnapshot(now=100.0, config_digest="d1", pending=(PENDING,)))
    assert "postfix_instance" not in text
    assert "pfwatch_config_changes_pending 1.0" in text
    assert "pfwatch_config_change_seconds_until_live 20.0" in text
