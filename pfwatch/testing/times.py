"""Test helper: read the times of pfwatch's JSON output back as POSIX seconds.

JSON output writes every moment as an RFC 3339 string (:func:`pfwatch.events.machine_times`);
tests that compute with them call :func:`epoch_times` on the parsed document. Inputs: a
parsed JSON value. Outputs: the same value with moments as floats. Errors: ``ValueError``
for a moment field that is not RFC 3339.
"""

from __future__ import annotations

from typing import Any

from pfwatch.events import MOMENT_MAPS, from_rfc3339, is_moment_key


def _epoch(value: Any) -> Any:
    return from_rfc3339(value) if isinstance(value, str) else value


def epoch_times(value: Any) -> Any:
    """The inverse of :func:`pfwatch.events.machine_times` for a parsed JSON value."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if is_moment_key(key):
                out[key] = _epoch(item)
            elif key in MOMENT_MAPS and isinstance(item, dict):
                out[key] = {name: _epoch(when) for name, when in item.items()}
            else:
                out[key] = epoch_times(item)
        return out
    if isinstance(value, list):
        return [epoch_times(item) for item in value]
    return value
