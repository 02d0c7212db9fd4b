"""The engine state as the JSON document committed with every batch, built fast.

:func:`pfwatch.core.state.to_json` goes through ``dataclasses.asdict``, which deep-copies
every process and change: ~27 ms for a 75 KB state on the CI machine, paid on every
commit, so on the latency of every event. The state is plain data by contract (see
:mod:`pfwatch.core.state`), so a shallow ``vars()`` per record gives the same document;
``json.dumps`` in the store reads it at once, under the loop's lock. The document is
exactly what :func:`pfwatch.core.state.from_json` reads (a test compares the two).
Inputs: an :class:`~pfwatch.core.state.EngineState`. Outputs: a JSON-ready dict.
Errors: none.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pfwatch.core.state import (
    STATE_VERSION,
    EngineState,
    change_to_dict,
    facts_to_dict,
    persisted_fields,
    process_plain,
    records_to_plain,
)
from pfwatch.events import ConfigFacts

_RECORDS = ("processes", "trackers")
_facts_cache: tuple[ConfigFacts | None, dict[str, Any] | None] = (None, None)


def state_document(state: EngineState) -> dict[str, Any]:
    """The same document as ``json.loads(to_json(state))``, without deep copies."""
    doc: dict[str, Any] = {"version": STATE_VERSION}
    for item in persisted_fields():
        value = getattr(state, item.name)
        if item.name == "facts":
            doc["facts"] = _facts(value)
        elif item.name == "settings":
            doc["settings"] = _plain(value)
        elif item.name == "changes":
            doc["changes"] = {key: change_to_dict(change) for key, change in value.items()}
        elif item.name == "processes":
            doc[item.name] = {key: process_plain(_plain(proc)) for key, proc in value.items()}
        elif item.name in _RECORDS:
            doc[item.name] = {key: _plain(record) for key, record in value.items()}
        elif item.name == "history":
            doc["history"] = [process_plain(_plain(process)) for process in value]
        elif item.name in ("master", "reloads"):
            doc[item.name] = records_to_plain(value)
        else:
            doc[item.name] = value
    return doc


def _plain(record: Any) -> dict[str, Any]:
    """A record's fields (shallow: its values are plain data already)."""
    try:
        return dict(vars(record))
    except TypeError:  # a slotted dataclass: no __dict__
        return asdict(record)


def _facts(facts: ConfigFacts | None) -> dict[str, Any] | None:
    """``facts_to_dict``, computed once per facts object (they change with the config)."""
    global _facts_cache  # noqa: PLW0603 - a one-entry cache
    if facts is None:
        return None
    cached_facts, cached_doc = _facts_cache
    if cached_facts is not facts or cached_doc is None:
        cached_doc = facts_to_dict(facts)
        _facts_cache = (facts, cached_doc)
    return cached_doc
