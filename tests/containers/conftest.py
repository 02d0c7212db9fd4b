"""Fixtures of the container tests: the engine check and per-test container cleanup.

Without an engine (or the images) the tests marked ``docker`` are left out with ONE line
in the summary saying why; under CI (``CI`` true) they run and fail instead, unless
``PFWATCH_SKIP_CONTAINERS=1`` asks to leave them out. A test that
fails gets the state and log of every container it started printed (captured output of
the teardown); every container is removed, pass or fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.containers.engine import (
    PFWATCH_IMAGE,
    POSTFIX_IMAGE,
    Containers,
    engine_problem,
    in_ci,
    require_engine,
)

MISSING = pytest.StashKey[tuple[str, int]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = [item for item in items if item.get_closest_marker("docker")]
    if not wanted:
        return
    if os.environ.get("PFWATCH_SKIP_CONTAINERS") == "1":
        problem: str | None = "PFWATCH_SKIP_CONTAINERS=1"
    elif in_ci():
        return
    else:
        problem = engine_problem(PFWATCH_IMAGE, POSTFIX_IMAGE)
    if problem is None:
        return
    config.hook.pytest_deselected(items=wanted)
    items[:] = [item for item in items if not item.get_closest_marker("docker")]
    config.stash[MISSING] = (problem, len(wanted))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if MISSING in config.stash:
        problem, count = config.stash[MISSING]
        terminalreporter.write_line(f"SKIPPED {count} container tests: {problem}", yellow=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """The engine and both images, checked once: without them every container test skips
    (fails under CI) with the same single line."""
    require_engine(PFWATCH_IMAGE, POSTFIX_IMAGE)


@pytest.fixture
def containers(request: pytest.FixtureRequest, docker_engine: None) -> Iterator[Containers]:
    group = Containers(f"pfwatch-test-{uuid.uuid4().hex[:8]}")
    try:
        yield group
    finally:
        if request.node.stash.get(FAILED, False):
            print(group.log_report())
        group.close()


def owned_by_sidecar(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 65532, 65532)
    return path
