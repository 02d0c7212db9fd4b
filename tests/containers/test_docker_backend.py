"""The fixture's docker backend on a real engine: what only a container can show.

The real-Postfix integration tests themselves run with this backend as well
(``pytest --postfix-backend=docker tests/integration/test_fixture.py
tests/integration/test_lifecycle_realpostfix.py``, which scripts/test.sh runs); this module
checks the container around them: host networking with no address of its own, the image
built locally, testcontainers' reaper off, pids of the container's namespace matching the
log, and nothing left behind by close().
"""

from __future__ import annotations

import os

import pytest

from pfwatch.testing.docker_backend import RYUK_ENV, DockerPostfixInstance
from tests.containers.engine import docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_docker_backend_runs_postfix_on_the_host_network_and_cleans_up(docker_engine: None) -> None:
    pf = DockerPostfixInstance(max_idle=2)
    try:
        pf.start()
        container = pf._container.get_wrapped_container()
        container.reload()
        attrs = container.attrs
        assert attrs["HostConfig"]["NetworkMode"] == "host"
        assert attrs["NetworkSettings"]["IPAddress"] == ""
        assert all(not n.get("IPAddress") for n in attrs["NetworkSettings"]["Networks"].values())
        assert docker("ps", "-q", "--filter", "ancestor=testcontainers/ryuk").stdout == ""
        assert os.environ.get(RYUK_ENV) == "true"

        since = pf.log_offset()
        queue_id = pf.send_mail("alice@sender.test", ["bob@remote.test"], "hello\n")
        pf.wait_for_log(rf"{queue_id}: to=<bob@remote\.test>, relay=127\.0\.0\.1.*status=sent", 20)
        assert pf.sink is not None and len(pf.sink.messages) == 1
        smtpd = int(pf.wait_for_log(r"smtpd\[(\d+)\]: connect from", 10, since=since)[1])
        master = pf.master_pid
        assert master is not None
        listed = {info.pid: info for info in pf.processes(include_master=True)}
        assert master in listed and listed[master].name == "master"
        pf.wait_for_log(rf"smtpd\[{smtpd}\]: idle timeout -- exiting", 10, since=since)
        pf.wait_for_exit(smtpd, 5)
        name = container.name
    finally:
        pf.close()
    assert docker("ps", "-aq", "--filter", f"name={name}").stdout.strip() == ""
    assert not pf.root.exists()
