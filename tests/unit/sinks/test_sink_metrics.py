"""Prometheus metrics: families rebuilt per scrape, counters from findings, naming rules."""

from __future__ import annotations

import re

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pfwatch.events import Finding
from pfwatch.sinks.metrics import MetricsSnapshot, PendingChange, PfwatchMetrics
from pfwatch.sources.base import SourceStatus


class Box:
    """A MetricsSource whose snapshot the test replaces."""

    def __init__(self, snap: MetricsSnapshot) -> None:
        self.snap = snap

    def metrics_snapshot(self) -> MetricsSnapshot:
        return self.snap


def samples(metrics: PfwatchMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


BUSY = MetricsSnapshot(
    now=1000.0,
    config_digest="sha256:abc",
    pending=(
        PendingChange("c1", 900.0, {"smtp/inet": 1060.0, "cleanup/unix": None}, ("reload",)),
        PendingChange("c2", 950.0, {"smtp/inet": 1100.0, "pickup/unix": 1030.0}),
    ),
    stale_processes={"smtp/inet": 3, "cleanup/unix": 1},
    last_reload_at=500.0,
    sources={"file:/var/log/mail.log": SourceStatus(True, 0.5, 120, 999.0)},
)


def test_snapshot_gauges() -> None:
    got = samples(PfwatchMetrics(Box(BUSY), process_metrics=False))
    assert got[("pfwatch_up", ())] == 1
    assert got[("pfwatch_config_changes_pending", ())] == 2
    assert got[("pfwatch_config_changes_pending_action", (("action", "reload"),))] == 1
    assert got[("pfwatch_config_changes_pending_action", (("action", "postmap"),))] == 0
    predicted = "pfwatch_config_change_predicted_live_timestamp_seconds"
    assert got[(predicted, (("master_service", "smtp/inet"),))] == 1100.0
    assert got[(predicted, (("master_service", "pickup/unix"),))] == 1030.0
    assert (predicted, (("master_service", "cleanup/unix"),)) not in got
    assert got[("pfwatch_config_change_seconds_until_live", ())] == 100.0
    assert got[("pfwatch_config_change_oldest_pending_timestamp_seconds", ())] == 900.0
    assert got[("pfwatch_stale_processes", (("master_service", "smtp/inet"),))] == 3
    assert got[("pfwatch_postfix_last_reload_timestamp_seconds", ())] == 500.0
    assert got[("pfwatch_config_info", (("digest", "sha256:abc"),))] == 1
    source = (("source", "file:/var/log/mail.log"),)
    assert got[("pfwatch_follower_lag_seconds", source)] == 0.5
    assert got[("pfwatch_follower_lag_bytes", source)] == 120
    assert got[("pfwatch_source_up", source)] == 1
    assert got[("pfwatch_log_last_line_timestamp_seconds", source)] == 999.0
    build = [key for key in got if key[0] == "pfwatch_build_info"]
    assert len(build) == 1 and dict(build[0][1])["version"]


def test_series_that_went_away_disappear() -> None:
    box = Box(BUSY)
    metrics = PfwatchMetrics(box, process_metrics=False)
    assert ("pfwatch_stale_processes", (("master_service", "smtp/inet"),)) in samples(metrics)
    box.snap = MetricsSnapshot(now=2000.0, config_digest="sha256:def")
    got = samples(metrics)
    assert not [key for key in got if key[0] == "pfwatch_stale_processes"]
    assert got[("pfwatch_config_changes_pending", ())] == 0
    assert ("pfwatch_config_change_seconds_until_live", ()) not in got
    assert ("pfwatch_config_info", (("digest", "sha256:abc"),)) not in got


def test_overdue_prediction_reports_zero_seconds() -> None:
    snap = MetricsSnapshot(now=5000.0, pending=(PendingChange("c", 1.0, {"smtp/inet": 10.0}),))
    got = samples(PfwatchMetrics(Box(snap), process_metrics=False))
    assert got[("pfwatch_config_change_seconds_until_live", ())] == 0.0


def test_counters_from_findings_and_follower() -> None:
    metrics = PfwatchMetrics(lambda: MetricsSnapshot(now=0.0), process_metrics=False)
    for reason in ("max_idle", "max_idle", "max_use"):
        metrics.emit(
            Finding("process_exited", 1.0, "observed", {"daemon": "smtpd", "reason": reason})
        )
    metrics.emit(Finding("config_error", 1.0, "observed", {"path": "/etc/postfix/main.cf"}))
    metrics.emit(Finding("postfix_reloaded", 1.0, "observed"))
    metrics.count_log_lines("journal", 10, unrecognized=2)
    metrics.count_log_lines("journal", 5)
    got = samples(metrics)
    assert got[("pfwatch_process_exits_total", (("daemon", "smtpd"), ("reason", "max_idle")))] == 2
    assert got[("pfwatch_process_exits_total", (("daemon", "smtpd"), ("reason", "max_use")))] == 1
    assert got[("pfwatch_config_errors_total", ())] == 1
    assert got[("pfwatch_postfix_reloads_total", ())] == 1
    assert got[("pfwatch_log_lines_read_total", (("source", "journal"),))] == 15
    assert got[("pfwatch_log_lines_unrecognized_total", ())] == 2
    assert got[("pfwatch_events_emitted_total", (("event", "process_exited"),))] == 3


def test_failing_snapshot_reports_up_zero_and_keeps_counters() -> None:
    def broken() -> MetricsSnapshot:
        raise RuntimeError("engine busy")

    metrics = PfwatchMetrics(broken, process_metrics=False)
    metrics.count_log_lines("journal", 1)
    got = samples(metrics)
    assert got[("pfwatch_up", ())] == 0
    assert got[("pfwatch_log_lines_read_total", (("source", "journal"),))] == 1


def test_names_follow_prometheus_conventions() -> None:
    metrics = PfwatchMetrics(Box(BUSY))
    text = generate_latest(metrics.registry).decode()
    names = {f.name for f in text_string_to_metric_families(text) if f.name.startswith("pfwatch_")}
    assert len(names) >= 20
    for name in names:
        assert re.fullmatch(r"pfwatch_[a-z0-9_]+", name), name
    labels = {
        label
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for label in sample.labels
    }
    assert "service" not in labels and "type" not in labels
    assert any(f.name == "process_cpu_seconds" for f in text_string_to_metric_families(text))
