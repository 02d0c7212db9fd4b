"""The suite's own rules: a test that leaks a thread fails; a warning is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_a_test_that_leaves_a_thread_running_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8").replace("5.0\n", "0.2\n", 1))
    pytester.makepyfile(
        """
        import threading

        stop = threading.Event()

        def test_leaks():
            threading.Thread(target=stop.wait, name="leaky", daemon=True).start()

        def test_joins():
            thread = threading.Thread(target=lambda: None)
            thread.start()
            thread.join()

        def test_zz_cleanup():
            stop.set()
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*left 1 thread(s) running: leaky (Thread)*"])


def test_warnings_are_errors_in_this_suite(pytester: pytest.Pytester) -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    assert 'filterwarnings = ["error"]' in text
    ini = text[text.index("[tool.pytest.ini_options]") :].split("\n[tool.mypy]")[0]
    ini = ini.replace('testpaths = ["tests"]', 'testpaths = ["."]')
    pytester.makefile(".toml", pyproject=ini)
    pytester.makepyfile(
        """
        import warnings

        def test_warns():
            warnings.warn("deprecated", DeprecationWarning)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)


UNIT = Path(__file__).resolve().parent
PACKAGE = Path(__file__).resolve().parents[2] / "pfwatch"
WHOLE_PACKAGE = frozenset(
    {
        "test_layers",
        "test_test_hygiene",
        "test_docs_events",
        "test_docs_architecture",
        "test_demo_scenario",
        "test_packaging",
    }
)
"""Tests of the package as a whole (imports, the suite, the docs), or of the demo data."""


def test_the_unit_tests_mirror_the_packages() -> None:
    """tests/unit/PKG/ for pfwatch/PKG/; at the top only tests of top-level modules
    (test_events.py for pfwatch/events.py) and of the package as a whole."""
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders - packages == set()
    top_modules = {p.stem for p in PACKAGE.glob("*.py")}
    stray = {
        p.stem
        for p in UNIT.glob("test_*.py")
        if p.stem.removeprefix("test_") not in top_modules and p.stem not in WHOLE_PACKAGE
    }
    assert stray == set()
