"""The change history kept in the state database, fed by change findings.

Inputs: ``change_detected``, ``change_prediction_updated`` and ``change_live`` findings
(docs/events.md §2.1), inside the store's transaction. Outputs: rows of the ``changes``
table and :class:`ChangeRecord` values read back. Errors: sqlite3 errors propagate to the
store, which turns them into StateError.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pfwatch.events import Finding


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One configuration change as kept in the history."""

    change_id: str
    detected_at: float
    files: tuple[str, ...]
    summary: Mapping[str, Any]
    predicted_live_at: float | None
    live_at: float | None
    needs: tuple[str, ...]
    basis: str

    @property
    def lag_seconds(self) -> float | None:
        """Seconds from the edit to the moment it went live, if it did."""
        return None if self.live_at is None else self.live_at - self.detected_at


def record_change(conn: sqlite3.Connection, finding: Finding) -> None:
    data = finding.data
    change_id = data.get("change_id")
    if not isinstance(change_id, str):
        return
    if finding.name == "change_detected":
        summary = {
            key: data[key]
            for key in (
                "parameters",
                "services",
                "tables",
                "affected",
                "daemons",
                "summary",
                "drift",
            )
            if key in data
        }
        conn.execute(
            "INSERT INTO changes (change_id, detected_at, files, summary, predicted_live_at,"
            " needs, basis) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (change_id) DO NOTHING",
            (
                change_id,
                finding.at,
                _dumps(list(data.get("files", []))),
                _dumps(summary),
                _float_or_none(data.get("predicted_live_at")),
                _dumps(list(data.get("needs", []))),
                finding.basis,
            ),
        )
    elif finding.name == "change_prediction_updated":
        conn.execute(
            "UPDATE changes SET predicted_live_at = ?, needs = coalesce(?, needs)"
            " WHERE change_id = ?",
            (
                _float_or_none(data.get("predicted_live_at")),
                _dumps(list(data["needs"])) if "needs" in data else None,
                change_id,
            ),
        )
    elif finding.name == "change_live":
        live_at = _float_or_none(data.get("live_at"))
        conn.execute(
            "UPDATE changes SET live_at = ?, basis = ? WHERE change_id = ?",
            (finding.at if live_at is None else live_at, finding.basis, change_id),
        )


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
