"""Shared test configuration: where the repository and the shared corpus are.

The real-Postfix fixture itself is shipped in the package (pfwatch.testing.plugin) and
registered through the ``pytest11`` entry point, so operators can use it too. Every test
must stop the threads it starts (``no_leaked_threads``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's top directory."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus of real-world Postfix logs and configs (beside the checkout)."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found beside the checkout ({CORPUS.name}/ missing)")
    return CORPUS


THREAD_GRACE_SECONDS = 5.0
"""How long a test's threads may take to finish after it returns (joins in ``close()``)."""


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running: followers, servers and pools it started
    must be stopped and joined by the test (or by the fixture that started them)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE_SECONDS
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    if leaked:
        names = ", ".join(sorted(f"{t.name} ({type(t).__name__})" for t in leaked))
        pytest.fail(f"the test left {len(leaked)} thread(s) running: {names}")
