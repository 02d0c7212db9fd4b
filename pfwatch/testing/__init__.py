"""Test helpers, never imported by product code: the pytest plugin (a private Postfix
from :mod:`pfwatch.instance`), hand-built event streams, the CLI runner, trials, clocks."""
