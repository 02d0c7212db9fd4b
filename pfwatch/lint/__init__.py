"""Lint a Postfix configuration the way ``postconf`` and ``master`` would object.

:mod:`pfwatch.lint.check` runs the rules over a parsed configuration;
:mod:`pfwatch.lint.rules` holds the rules as data, each citing the Postfix source that
makes it a problem. This module is the package's interface: ``lint(LintInput(...))`` gives
the sorted :class:`LintFinding` tuple; :func:`lint_snapshot` lints what the configuration
loader read (:mod:`pfwatch.lint.snapshot`), as ``check`` and ``wait`` do. Errors: none
(``lint_snapshot``: the loader's, when main.cf or master.cf did not parse).
"""

from __future__ import annotations

from pfwatch.lint.check import (
    LintFinding,
    LintInput,
    lint,
    service_defined_names,
)
from pfwatch.lint.snapshot import lint_snapshot

__all__ = [
    "LintFinding",
    "LintInput",
    "lint",
    "lint_snapshot",
    "service_defined_names",
]
