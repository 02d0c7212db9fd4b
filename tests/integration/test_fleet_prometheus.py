"""A fleet end to end: Debian's Prometheus and Alertmanager over three real pfwatch services.

Three private Postfix instances, a ``pfwatch watch`` in front of each, one Prometheus
scraping them every second with a copy of docker/monitoring/alerts.yaml whose ``for:``
durations are cut to seconds (the shipped file keeps production values), and one
Alertmanager that delivers to a webhook served by this test. Asserted:

- every query of docker/monitoring/grafana-dashboard.json (its ``$job`` and ``$instance``
  variables filled as Grafana would) returns data over the test's time range, and the
  variables' own queries list the job and all three instances;
- ``PfwatchConfigChangeNeedsAction`` fires, and reaches the webhook, when a table source
  is edited without ``postmap``, and resolves after ``postmap``; the firing and resolving
  times are printed for the record;
- 400 half-open connections to one service leave its thread count bounded while
  Prometheus keeps scraping it;
- one service serves over TLS with bcrypt basic auth (``--web-config``), and Prometheus
  scrapes it with the CA and the password (its ``job`` relabelled to the others').

Skips with one line when ``prometheus`` or ``prometheus-alertmanager`` is not installed
(scripts/test.sh installs both), and fails instead under CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from watch_harness import WatchProcess

from pfwatch.instance.local import PostfixInstance, free_port
from pfwatch.testing.plugin import PostfixFactory, in_ci

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

MONITORING = Path(__file__).resolve().parents[2] / "docker" / "monitoring"
ALERT = "PfwatchConfigChangeNeedsAction"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (Debian package {name})"
        if in_ci():
            pytest.fail(f"{message}; CI must install it (scripts/test.sh)", pytrace=False)
        pytest.skip(message)
    return path


class Webhook:
    """Alertmanager's webhook receiver: keeps every notification it is sent."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        lock = self.lock = threading.Lock()
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with lock:
                    received.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, name: str, status: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                alert
                for note in self.notifications
                for alert in note["alerts"]
                if alert["labels"].get("alertname") == name and alert["status"] == status
            ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """A Prometheus or Alertmanager child on a loopback port."""

    def __init__(self, argv: list[str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT)
        wait_until(self._ready, 60, f"{Path(argv[0]).name} ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.log.name} exited:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def get(self, path: str, **params: str | float) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def wait_until(check: Callable[[], object], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            found.extend((panel["title"], t["expr"]) for t in panel.get("targets", []))

    walk(dashboard["panels"])
    return found


PASSWORD = "fleet-scrape-secret"  # a throwaway credential of this test


def protected_endpoint(directory: Path) -> tuple[Path, Path]:
    """A --web-config with a self-signed certificate for 127.0.0.1 and one bcrypt user."""
    directory.mkdir()
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=6)).decode()
    web = directory / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                "basic_auth_users": {"prometheus": hashed},
            }
        ),
        encoding="utf-8",
    )
    web.chmod(0o600)
    return web, cert


def short_rules(target: Path) -> Path:
    """alerts.yaml with every ``for:`` cut to 3 s, for a test that cannot wait 15 minutes."""
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "3s"
    target.write_text(yaml.safe_dump(rules), encoding="utf-8")
    return target


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    prometheus = _binary("prometheus")
    alertmanager = _binary("prometheus-alertmanager")
    made: dict[str, Any] = {"webhook": Webhook(), "watches": [], "daemons": []}
    made["tmp"] = tmp_path
    made["binaries"] = (prometheus, alertmanager)
    try:
        yield made
    finally:
        for watch in made["watches"]:
            watch.kill()
        for daemon in made["daemons"]:
            daemon.close()
        made["webhook"].close()


def test_fleet_in_prometheus_and_alertmanager(
    postfix_factory: PostfixFactory, stack: dict[str, Any]
) -> None:
    tmp: Path = stack["tmp"]
    prometheus_bin, alertmanager_bin = stack["binaries"]
    webhook: Webhook = stack["webhook"]
    started = time.time()

    # -- three Postfix instances, a pfwatch in front of each -----------------------------
    instances: list[PostfixInstance] = [postfix_factory(max_idle=8) for _ in range(3)]
    watches: list[WatchProcess] = stack["watches"]
    web_config, ca_file = protected_endpoint(tmp / "tls")
    for number, inst in enumerate(instances):
        inst.write_file("virtual", "postmaster@example.com root\n")
        inst.postmap("virtual")
        inst.edit_main_cf({"virtual_alias_maps": "hash:$config_directory/virtual"})
        inst.reload(wait=True)
        base = tmp / f"watch{number}"
        base.mkdir()
        # the third serves over TLS with basic auth, as beyond loopback it should
        extra = ["--web-config", str(web_config)] if number == 2 else []
        watches.append(
            WatchProcess(inst.config_dir, inst.maillog, base / "state", base / "out", extra=extra)
        )
    for watch in watches:
        watch.wait_started()
    targets = [f"127.0.0.1:{watch.port}" for watch in watches]

    # -- Alertmanager with the webhook, Prometheus scraping the three -------------------
    am_port = free_port()
    (tmp / "am.yml").write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "hook",
                    "group_by": ["alertname", "instance"],
                    "group_wait": "1s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "hook",
                        "webhook_configs": [
                            {"url": f"http://127.0.0.1:{webhook.port}/", "send_resolved": True}
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    stack["daemons"].append(
        Daemon(
            [
                alertmanager_bin,
                f"--config.file={tmp / 'am.yml'}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            am_port,
            tmp / "alertmanager.log",
        )
    )
    prom_port = free_port()
    rules = short_rules(tmp / "alerts.yaml")
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                },
                "scrape_configs": [
                    {"job_name": "pfwatch", "static_configs": [{"targets": targets[:2]}]},
                    {
                        "job_name": "pfwatch-tls",
                        "scheme": "https",
                        "tls_config": {"ca_file": str(ca_file)},
                        "basic_auth": {"username": "prometheus", "password": PASSWORD},
                        "static_configs": [{"targets": targets[2:]}],
                        "relabel_configs": [{"target_label": "job", "replacement": "pfwatch"}],
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    prom = Daemon(
        [
            prometheus_bin,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--rules.alert.resend-delay=1s",
        ],
        prom_port,
        tmp / "prometheus.log",
    )
    stack["daemons"].append(prom)

    def instant(query: str) -> list[dict[str, Any]]:
        answer = prom.get("/api/v1/query", query=query)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    wait_until(lambda: len(instant('up{job="pfwatch"} == 1')) == 3, 30, "3 targets up")

    # -- traffic, a reload and a parameter edit with stale processes, on each -------------
    for inst in instances:
        inst.send_mail("alice@example.com", "bob@example.com")
    for inst, watch in zip(instances, watches, strict=True):
        inst.reload()
        watch.wait_for(lambda e: e["event"] == "postfix_reloaded", what="postfix_reloaded")
        inst.send_mail("alice@example.com", "bob@example.com")
        watch.wait_for(
            lambda e: e["event"] == "process_started" and e["daemon"] == "smtpd",
            what="an smtpd",
        )
        inst.edit_main_cf({"smtpd_banner": "$myhostname ESMTP fleet"})
    wait_until(lambda: instant("pfwatch_config_change_seconds_until_live"), 20, "a prediction")
    wait_until(lambda: instant("pfwatch_stale_processes > 0"), 20, "stale processes")
    wait_until(lambda: instant("sum(pfwatch_process_exits_total) > 0"), 60, "process exits counted")

    # -- the needs-action alert: a table edited without postmap, then postmap ------------
    inst, watch = instances[1], watches[1]
    inst.write_file("virtual", "postmaster@example.com root\nabuse@example.com root\n")
    edited_at = time.time()
    watch.wait_for(
        lambda e: e["event"] == "change_detected" and "postmap" in e["needs"],
        what="a change that needs postmap",
    )
    firing = wait_until(lambda: webhook.alerts(ALERT, "firing"), 60, f"{ALERT} firing")
    fired_seen = time.time()
    assert {a["labels"]["instance"] for a in firing} == {targets[1]}
    assert firing[0]["labels"]["severity"] == "critical"
    assert webhook.alerts(ALERT, "resolved") == []
    inst.postmap("virtual")
    postmapped_at = time.time()
    resolved = wait_until(lambda: webhook.alerts(ALERT, "resolved"), 60, f"{ALERT} resolved")
    resolved_seen = time.time()
    assert resolved[0]["labels"]["instance"] == targets[1]
    starts, ends = _stamp(firing[0]["startsAt"]), _stamp(resolved[0]["endsAt"])
    assert edited_at < starts < postmapped_at < ends
    print(
        f"\n{ALERT} on {targets[1]}: table edited {_iso(edited_at)}, firing from "
        f"{firing[0]['startsAt']} (webhook {_iso(fired_seen)}), postmap {_iso(postmapped_at)}, "
        f"resolved at {resolved[0]['endsAt']} (webhook {_iso(resolved_seen)})"
    )

    # -- 400 half-open connections to one service: threads bounded, scrapes answered ------
    flooded = watches[0]
    tasks_before = len(os.listdir(f"/proc/{flooded.proc.pid}/task"))
    flood: list[socket.socket] = []
    try:
        for _ in range(400):
            sock = socket.create_connection(("127.0.0.1", flooded.port))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            flood.append(sock)
        flood_from = time.time()
        time.sleep(4)
        tasks_during = len(os.listdir(f"/proc/{flooded.proc.pid}/task"))
        scraped = instant(f'min_over_time(up{{instance="{targets[0]}"}}[3s])')
    finally:
        for sock in flood:
            sock.close()
    print(
        f"pfwatch watch under 400 half-open connections: {tasks_before} threads before, "
        f"{tasks_during} during; up over the flood: {scraped[0]['value'][1] if scraped else None}"
    )
    assert tasks_during <= tasks_before + 4
    assert scraped and scraped[0]["value"][1] == "1", scraped
    assert flood_from > started

    # -- every dashboard query has data over the test's range --------------------------
    # Grafana fills a multi-value variable with a regex alternation, escaped for PromQL
    chosen = "|".join(re.escape(t) for t in targets).replace("\\", "\\\\")
    end = time.time()
    empty = []
    for title, expr in dashboard_queries():
        query = expr.replace("$job", "pfwatch").replace("$instance", chosen)
        answer = prom.get("/api/v1/query_range", query=query, start=started, end=end, step=1)
        assert answer["status"] == "success", (title, answer)
        if not answer["data"]["result"]:
            empty.append(f"{title}: {query}")
    assert empty == [], "dashboard queries without data:\n" + "\n".join(empty)
    jobs = prom.get("/api/v1/label/job/values", **{"match[]": "pfwatch_build_info"})
    assert jobs["data"] == ["pfwatch"]
    hosts = prom.get(
        "/api/v1/label/instance/values", **{"match[]": 'pfwatch_build_info{job="pfwatch"}'}
    )
    assert sorted(hosts["data"]) == sorted(targets)


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment).astimezone().isoformat(timespec="milliseconds")
