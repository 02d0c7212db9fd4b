"""The one way tests run the ``pfwatch`` command line: in-process, through the real entry.

:func:`run_pfwatch` calls :func:`pfwatch.cli.main.main` (so errors take the same road to
their exit code as for an operator) inside click's :class:`~click.testing.CliRunner`
isolation (stdin, stdout, stderr and environment swapped for the call). Inputs: argv,
optional environment overrides and stdin. Outputs: a :class:`click.testing.Result` with
``exit_code``, ``stdout``, ``stderr`` and ``output`` (both interleaved). Errors: none; an
exception that escapes the entry point (only with ``PFWATCH_DEBUG``) is in ``exception``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from click.testing import CliRunner, Result

from pfwatch.cli.main import main


def run_pfwatch(
    *args: str, env: Mapping[str, str | None] | None = None, input: str | bytes | None = None
) -> Result:
    """Run ``pfwatch ARGS...`` and return what it printed and its exit status."""
    runner = CliRunner()
    exit_code = 0
    exception: BaseException | None = None
    exc_info = None
    with runner.isolation(input=input, env=env) as (stdout, stderr, output):
        try:
            main(args)
        except SystemExit as stop:
            code = stop.code
            exit_code = code if isinstance(code, int) else (0 if code is None else 1)
        except Exception as exc:
            exit_code, exception, exc_info = 1, exc, sys.exc_info()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return Result(
            runner=runner,
            stdout_bytes=stdout.getvalue(),
            stderr_bytes=stderr.getvalue(),
            output_bytes=output.getvalue(),
            return_value=None,
            exit_code=exit_code,
            exception=exception,
            exc_info=exc_info,  # type: ignore[arg-type]
        )
