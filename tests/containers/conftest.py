"""Fixtures of the container tests: the engine check and per-test container cleanup.

A test that fails gets the state and log of every container it started printed (captured
output of the teardown); every container is removed, pass or fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers.engine import PFWATCH_IMAGE, POSTFIX_IMAGE, Containers, require_engine


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def containers(request: pytest.FixtureRequest) -> Iterator[Containers]:
    require_engine(PFWATCH_IMAGE, POSTFIX_IMAGE)
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
