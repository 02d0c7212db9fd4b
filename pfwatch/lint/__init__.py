"""Lint a Postfix configuration the way ``postconf`` and ``master`` would object.

:mod:`pfwatch.lint.check` runs the rules over a parsed configuration;
:mod:`pfwatch.lint.rules` holds the rules as data, each citing the Postfix source that
makes it a problem. This module is the package's interface: ``lint(LintInput(...))`` gives
the sorted :class:`LintFinding` tuple. Used by ``check`` and ``wait`` (through
:mod:`pfwatch.changewindow.liveconfig`). Errors: none.
"""

from __future__ import annotations

from pfwatch.lint.check import (
    LintFinding,
    LintInput,
    lint,
    macro_names,
    service_defined_names,
)

__all__ = [
    "LintFinding",
    "LintInput",
    "lint",
    "macro_names",
    "service_defined_names",
]
