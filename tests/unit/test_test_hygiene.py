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
