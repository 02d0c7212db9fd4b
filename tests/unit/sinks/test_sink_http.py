"""The HTTP endpoint on 127.0.0.1 with a free port: metrics, status, health, landing."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from pfwatch.errors import UsageError
from pfwatch.sinks.http import DEFAULT_PORT, Health, HttpEndpoint, health_from
from pfwatch.sinks.metrics import MetricsSnapshot, PfwatchMetrics
from pfwatch.sources.base import SourceStatus


class World:
    def __init__(self) -> None:
        self.health = Health(ok=True, sources={"journal": {"up": True}})
        self.status_fails = False

    def status(self) -> dict[str, object]:
        if self.status_fails:
            raise RuntimeError("engine exploded")
        return {"pending": [{"change_id": "c1"}]}


@pytest.fixture
def served() -> Iterator[tuple[World, str]]:
    world = World()
    metrics = PfwatchMetrics(lambda: MetricsSnapshot(now=0.0, config_digest="d"))
    endpoint = HttpEndpoint(
        metrics.registry, world.status, lambda: world.health, host="127.0.0.1", port=0
    ).start()
    host, port = endpoint.address
    yield world, f"http://{host}:{port}"
    endpoint.close()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_metrics_endpoint(served: tuple[World, str]) -> None:
    _, base = served
    code, content_type, body = get(base + "/metrics")
    assert code == 200 and content_type.startswith("text/plain")
    assert 'pfwatch_config_info{digest="d"} 1.0' in body


def test_status_and_landing(served: tuple[World, str]) -> None:
    world, base = served
    code, content_type, body = get(base + "/status")
    assert code == 200 and content_type == "application/json"
    assert json.loads(body) == {"pending": [{"change_id": "c1"}]}
    code, _, body = get(base + "/")
    assert code == 200 and 'href="/metrics"' in body
    world.status_fails = True
    code, _, body = get(base + "/status")
    assert code == 500 and "engine exploded" in json.loads(body)["error"]
    assert get(base + "/metrics")[0] == 200


def test_healthz_turns_503_when_a_source_fails(served: tuple[World, str]) -> None:
    world, base = served
    code, _, body = get(base + "/healthz")
    assert code == 200 and json.loads(body)["ok"] is True
    world.health = Health(ok=False, sources={"file:/var/log/mail.log": {"error": "vanished"}})
    code, _, body = get(base + "/healthz")
    assert code == 503
    assert json.loads(body)["sources"]["file:/var/log/mail.log"]["error"] == "vanished"
    assert get(base + "/nope")[0] == 404


def test_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(UsageError, match=f"127.0.0.1:{port}"):
            HttpEndpoint(
                PfwatchMetrics(lambda: MetricsSnapshot(now=0.0)).registry,
                dict,
                lambda: Health(True),
                port=port,
            )


def test_default_port_is_outside_exporter_and_ephemeral_ranges() -> None:
    assert not 9100 <= DEFAULT_PORT <= 9999
    assert DEFAULT_PORT < 32768


def test_health_from_snapshot() -> None:
    healthy = health_from(
        MetricsSnapshot(now=0.0, sources={"journal": SourceStatus(True)}, state_ok=False)
    )
    assert healthy.ok and healthy.document()["state_ok"] is False
    sick = health_from(
        MetricsSnapshot(
            now=0.0,
            sources={"journal": SourceStatus(True), "file:/x": SourceStatus(False, error="gone")},
        )
    )
    assert not sick.ok
    assert sick.document()["sources"]["file:/x"] == {
        "up": False,
        "error": "gone",
        "lag_seconds": None,
    }
