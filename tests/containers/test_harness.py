"""The container harness itself: a container that dies mid-test fails the test with its
log, and nothing is left running afterwards."""

from __future__ import annotations

import pytest

from tests.containers.engine import POSTFIX_IMAGE, ContainerDied, Containers, docker

pytestmark = pytest.mark.docker


def test_a_container_dying_mid_test_fails_with_its_log_and_is_removed(docker_engine: None) -> None:
    group = Containers("pfwatch-test-harness")
    try:
        name = group.run("dies", POSTFIX_IMAGE, "sh", "-c", "echo last words; sleep 1; exit 3")
        with pytest.raises(ContainerDied) as died:
            group.wait_for(lambda: None, "something that never comes", timeout=30)
        assert "last words" in str(died.value)
        assert '"ExitCode":3' in str(died.value)
    finally:
        group.close()
    assert docker("ps", "-aq", "--filter", f"name={name}").stdout.strip() == ""
