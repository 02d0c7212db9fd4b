"""Line statistics of a maillog reader: counts, unrecognized shapes and samples.

Inputs: counts from :class:`~pfwatch.maillog.reader.LogClassifier`. Outputs:
:class:`LineStats` and its JSON form (stable keys). Errors: none. Memory is bounded: the
shape counter keeps the most common shapes only, samples are capped by the caller.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

SHAPES_LIMIT = 200
"""How many distinct unrecognized shapes are kept (the most common ones)."""

_SHAPE_SUBS = (
    (re.compile(r"\[[^\]]*\](?::\d+)?"), "[ADDR]"),
    (re.compile(r"<[^>]*>"), "<ADDR>"),
    (re.compile(r"\b[0-9A-F]{6,}\b|\b[0-9a-f]{8,}\b"), "HEX"),
    (re.compile(r"\S+@\S+"), "ADDR@"),
    (re.compile(r"\d+"), "N"),
)


def shape_of(daemon: str, message: str) -> str:
    """The message with numbers, queue ids and addresses normalised, for counting."""
    text = message[:300]
    for regex, replacement in _SHAPE_SUBS:
        text = regex.sub(replacement, text)
    return f"{daemon}: {text[:160]}"


@dataclass
class LineStats:
    """Counters over every line fed; ``recognized + unrecognized == postfix``.

    ``per_daemon`` counts lines, ``processes_per_daemon`` distinct pids (approximate
    beyond 65536 live processes), ``per_kind`` lines per catalogue kind.
    """

    lines_total: int = 0
    lines_postfix: int = 0
    lines_recognized: int = 0
    lines_unrecognized: int = 0
    lines_malformed: int = 0
    lines_time_backwards: int = 0
    lines_truncated: int = 0
    lines_undecodable: int = 0
    per_daemon: dict[str, int] = field(default_factory=dict)
    processes_per_daemon: dict[str, int] = field(default_factory=dict)
    per_kind: dict[str, int] = field(default_factory=dict)
    unrecognized_shapes: Counter[str] = field(default_factory=Counter)
    unrecognized_samples: list[str] = field(default_factory=list)
    read_errors: list[str] = field(default_factory=list)

    def count_shape(self, shape: str) -> None:
        """Count one unrecognized shape, keeping only the most common when too many."""
        self.unrecognized_shapes[shape] += 1
        if len(self.unrecognized_shapes) > 2 * SHAPES_LIMIT:
            self.unrecognized_shapes = Counter(
                dict(self.unrecognized_shapes.most_common(SHAPES_LIMIT))
            )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary; keys are stable (documented in docs/events.md)."""
        return {
            "lines_total": self.lines_total,
            "lines_postfix": self.lines_postfix,
            "lines_recognized": self.lines_recognized,
            "lines_unrecognized": self.lines_unrecognized,
            "lines_malformed": self.lines_malformed,
            "lines_time_backwards": self.lines_time_backwards,
            "lines_truncated": self.lines_truncated,
            "lines_undecodable": self.lines_undecodable,
            "per_daemon": dict(sorted(self.per_daemon.items())),
            "processes_per_daemon": dict(sorted(self.processes_per_daemon.items())),
            "per_kind": dict(sorted(self.per_kind.items())),
            "unrecognized_shapes": [
                {"shape": shape, "count": count}
                for shape, count in self.unrecognized_shapes.most_common(SHAPES_LIMIT)
            ],
            "unrecognized_samples": list(self.unrecognized_samples),
            "read_errors": list(self.read_errors),
        }
