"""Forget settled changes so that a long-running engine state stays small.

A change that went live, or that a later change superseded, no longer affects what the
engine concludes about the others: nothing reads it again but reports. ``pfwatch watch``
keeps the newest ``keep`` of them (its store keeps every change for ``pfwatch history``)
and drops the rest, so that the state committed with every batch, and every step that
looks at all changes, does not grow with the number of edits ever made. ``explain`` and
``check`` report every change of their input and do not call this.
Inputs: an :class:`~pfwatch.core.state.EngineState` and how many settled changes to keep.
Output: the ids of the changes dropped (the state is changed in place). Errors: none.
"""

from __future__ import annotations

from pfwatch.core.state import EngineState

__all__ = ["forget_settled_changes"]


def forget_settled_changes(state: EngineState, keep: int) -> list[str]:
    """Drop all but the newest ``keep`` settled changes; return the dropped ids, oldest first.

    Settled: live, or superseded (a later change covers every part of it).
    """
    changes = state.changes
    settled = [
        change for change in changes.values() if change.status == "live" or change.superseded_by
    ]
    if len(settled) <= keep:
        return []
    settled.sort(key=lambda change: (change.at, change.change_id))
    dropped = [change.change_id for change in settled[: len(settled) - keep]]
    for change_id in dropped:
        del changes[change_id]
    return dropped
