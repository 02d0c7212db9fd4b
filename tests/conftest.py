"""Shared test configuration: where the repository and the shared corpus are.

The real-Postfix fixture itself is shipped in the package (pfwatch.testing.plugin) and
registered through the ``pytest11`` entry point, so operators can use it too.
"""

from __future__ import annotations

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
