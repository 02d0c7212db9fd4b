"""pfwatch: tells Postfix operators when their configuration edits actually go live.

Public API (stable): the event vocabulary in :mod:`pfwatch.events`, the pure engine
:func:`pfwatch.core.fold.fold`, and the command line in :mod:`pfwatch.cli`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
