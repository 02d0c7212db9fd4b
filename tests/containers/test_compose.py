"""docker/compose.yaml brought up for real (Debian's docker-compose, or the Compose plugin).

The same file users run: Postfix and the sidecar on the host network with loopback ports,
a shared PID namespace (``pid: "service:postfix"``), the configuration and log volumes
shared, the sidecar read-only and unprivileged. In short: healthy, a main.cf edit made in
the Postfix container (``postconf -e``, a rename) is reported and goes live, /metrics and
/healthz answer. Everything, volumes included, is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pfwatch.instance.local import free_port
from tests.containers.engine import PFWATCH_IMAGE, POSTFIX_IMAGE, Containers, docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if docker("compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    pytest.skip("container tests: neither docker-compose nor the Compose plugin is installed")
    raise AssertionError("unreachable")


class Project:
    def __init__(self) -> None:
        self.name = f"pfwatch-test-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "POSTFIX_SMTP_PORT": str(free_port()),
            "PFWATCH_PORT": str(free_port()),
            "PFWATCH_IMAGE": PFWATCH_IMAGE,
            "PFWATCH_POSTFIX_TEST_IMAGE": POSTFIX_IMAGE,
        }
        self.base = [*compose_command(), "-p", self.name, "-f", str(COMPOSE_FILE)]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: {done.stdout}{done.stderr}")
        return done

    def container(self, service: str) -> str:
        return self.run("ps", "-q", service).stdout.strip()

    def events(self) -> list[dict]:
        out = docker("logs", self.container("pfwatch"), check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith('{"event"')]

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.env['PFWATCH_PORT']}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except OSError:
            return 0, ""


@pytest.fixture
def project(docker_engine: None) -> Iterator[Project]:
    up = Project()
    try:
        yield up
    finally:
        up.run("down", "-v", "--remove-orphans", check=False)


def test_compose_file_comes_up_and_reports_an_edit(project: Project) -> None:
    project.run("up", "-d", "--no-build")
    group = Containers(project.name)  # for waiting with the containers' logs on failure
    group.names = [project.container("postfix"), project.container("pfwatch")]

    pfwatch = group.inspect(group.names[1])
    assert pfwatch["HostConfig"]["NetworkMode"] == "host"
    assert pfwatch["HostConfig"]["PidMode"] == f"container:{group.names[0]}"
    assert pfwatch["HostConfig"]["ReadonlyRootfs"] is True
    assert pfwatch["Config"]["User"] == "65532:65532"

    group.wait_for(lambda: group.health(group.names[1]) == "healthy", "HEALTHCHECK", timeout=90)
    assert json.loads(project.get("/healthz")[1])["ok"] is True
    group.wait_for(
        lambda: any(e["event"] == "process_started" and e["daemon"] == "master"
                    for e in project.events()),
        "the master seen through the shared PID namespace",
    )  # fmt: skip

    project.run("exec", "-T", "postfix", "postconf", "-e", "smtpd_banner=$myhostname ESMTP compose")
    change = group.wait_for(
        lambda: [e for e in project.events() if e["event"] == "change_detected"], "change"
    )[0]
    assert "smtpd_banner" in change["parameters"]
    group.wait_for(
        lambda: [e for e in project.events()
                 if e["event"] == "change_live" and e["change_id"] == change["change_id"]],
        "change_live", timeout=150,
    )  # fmt: skip
    status, metrics = project.get("/metrics")
    assert status == 200 and "pfwatch_config_changes_pending 0.0" in metrics


def compose_settings() -> dict:
    """The sidecar settings of docker/compose.yaml that test_compose exercises."""
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]["pfwatch"]
