"""Classify one Postfix message text into a catalogue kind and its fields, fast.

The catalogue (:mod:`pfwatch.grammars.maillog_catalogue`) is compiled once into, per
daemon, a dict from first word to the rows that may start with it, plus the rows without a
fixed first word. A message costs one dict lookup and usually one or two ``re.match``
calls. Inputs: daemon name and message text. Output: ``(kind, fields)``, kind
``"unrecognized"`` when nothing matches. Errors: none (a catalogue whose fields disagree
with its regex raises ValueError at compile time).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from pfwatch.grammars.maillog_catalogue import CATALOGUE, Row

UNRECOGNIZED: Final = "unrecognized"
ACTIVITY_KIND: Final = "message_activity"
ACTIVITY_PATTERN: Final = next(row.pattern for row in CATALOGUE if row.kind == ACTIVITY_KIND)
"""The queue-id row: the replay fast path matches it together with the envelope."""

Matcher = Callable[[str], "re.Match[str] | None"]
Compiled = tuple[str, Matcher, tuple[str, ...]]


def _compile(row: Row) -> Compiled:
    regex = re.compile(row.pattern)
    groups = tuple(regex.groupindex)
    if sorted(groups) != sorted(row.fields):
        raise ValueError(
            f"catalogue row {row.kind} ({row.source}): fields {row.fields} "
            f"differ from the regex groups {groups}"
        )
    return (row.kind, regex.match, row.fields)


class Classifier:
    """The compiled catalogue; call :meth:`classify` per message."""

    def __init__(self, rows: Sequence[Row] = CATALOGUE) -> None:
        compiled = [(row, _compile(row)) for row in rows]
        daemons = {d for row in rows for d in row.daemons if d != "*"}
        self._by_daemon: dict[str, dict[str, tuple[Compiled, ...]]] = {}
        self._fallback: dict[str, tuple[Compiled, ...]] = {}
        for daemon in (*sorted(daemons), "*"):
            words: dict[str, list[Compiled]] = {}
            fallback: list[Compiled] = []
            for row, entry in compiled:
                if "*" not in row.daemons and daemon not in row.daemons:
                    continue
                if not row.first_words:
                    fallback.append(entry)
                for word in row.first_words:
                    words.setdefault(word, []).append(entry)
            self._by_daemon[daemon] = {word: tuple(entries) for word, entries in words.items()}
            self._fallback[daemon] = tuple(fallback)
        self._any_words = self._by_daemon["*"]
        self._any_fallback = self._fallback["*"]

    def classify(self, daemon: str, message: str) -> tuple[str, dict[str, str]]:
        """The kind and fields of ``message`` logged by ``daemon``."""
        words = self._by_daemon.get(daemon, self._any_words)
        space = message.find(" ")
        first = message if space < 0 else message[:space]
        candidates = words.get(first)
        if candidates is not None:
            for kind, match, fields in candidates:
                found = match(message)
                if found is not None:
                    return kind, _fields(found, fields)
        for kind, match, fields in self._fallback.get(daemon, self._any_fallback):
            found = match(message)
            if found is not None:
                return kind, _fields(found, fields)
        return UNRECOGNIZED, {}


def _fields(found: re.Match[str], names: tuple[str, ...]) -> dict[str, str]:
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: found.group(names[0]) or ""}
    return found.groupdict("")
