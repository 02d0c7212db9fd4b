"""docs/events.md is the contract: it must name every event and metric the code produces.

Event names are collected from the source (every ``Finding("name", ...)`` in pfwatch/);
metric names from a live registry whose snapshot fills every family. The alert rules
and the dashboard may only use metrics that exist.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pfwatch.events import Finding
from pfwatch.sinks.metrics import MetricsSnapshot, PendingChange, PfwatchMetrics
from pfwatch.sources.base import SourceStatus

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
METRIC = re.compile(r"\bpfwatch_[a-z0-9_]*[a-z0-9]\b")


def documented(name: str) -> bool:
    return f"`{name}`" in DOC


def finding_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for path in sorted((ROOT / "pfwatch").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called != "Finding":
                continue
            args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "name")]
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names[arg.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return names


def registered_metrics() -> set[str]:
    snap = MetricsSnapshot(
        now=10.0,
        config_digest="d",
        pending=(PendingChange("c", 1.0, {"smtp/inet": 20.0}, ("reload",)),),
        stale_processes={"smtp/inet": 1},
        last_reload_at=1.0,
        sources={"journal": SourceStatus(True, 1.0, 2, 3.0)},
    )
    metrics = PfwatchMetrics(lambda: snap, process_metrics=False)
    for name in ("process_exited", "config_error", "postfix_reloaded", "state_error"):
        metrics.emit(Finding(name, 1.0, "observed", {"daemon": "smtpd", "reason": "max_idle"}))
    metrics.count_log_lines("journal", 2, 1)
    text = generate_latest(metrics.registry).decode()
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_the_scan_finds_the_engine_events() -> None:
    names = finding_names()
    assert {"process_exited", "change_detected"} <= set(names), sorted(names)


def test_every_event_name_in_code_is_documented() -> None:
    missing = {name: where for name, where in finding_names().items() if not documented(name)}
    assert not missing, f"events used in code but not in docs/events.md: {missing}"


def test_every_registered_metric_is_documented() -> None:
    names = registered_metrics()
    assert len(names) >= 20
    missing = sorted(name for name in names if not documented(name))
    assert not missing, f"metrics registered but not in docs/events.md: {missing}"


def test_docs_alerts_and_dashboard_name_only_real_metrics() -> None:
    real = registered_metrics()
    alerts = (ROOT / "docker" / "monitoring" / "alerts.yaml").read_text(encoding="utf-8")
    dashboard = (ROOT / "docker" / "monitoring" / "grafana-dashboard.json").read_text()
    json.loads(dashboard)
    for where, text in (("docs/events.md", DOC), ("alerts.yaml", alerts), ("dashboard", dashboard)):
        unknown = sorted(set(METRIC.findall(text)) - real)
        assert not unknown, f"{where} names metrics pfwatch does not export: {unknown}"


def test_alert_rules_are_named_and_annotated_as_the_mixins_ask() -> None:
    alerts = (ROOT / "docker" / "monitoring" / "alerts.yaml").read_text(encoding="utf-8")
    names = re.findall(r"- alert: (\w+)", alerts)
    assert {"PfwatchConfigChangeNotLive", "PfwatchConfigChangeNeedsAction"} <= set(names)
    assert {"PfwatchConfigError", "PfwatchLogStalled"} <= set(names)
    assert all(name.startswith("Pfwatch") for name in names)
    assert alerts.count("summary:") == len(names) == alerts.count("description:")
    assert set(re.findall(r"severity: (\w+)", alerts)) <= {"critical", "warning", "info"}
