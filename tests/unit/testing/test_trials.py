"""The per-trial rules of the randomized real-Postfix trials (pfwatch.testing.trials)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pfwatch.testing.trials import plan_trial, violations


def result(confirmed_log: float = 8.6, earliest: float = 4.0) -> dict[str, Any]:
    """A trial whose trivial-rewrite went at +8.3 s (seen alive at +8.28 s)."""

    def said(confirmed: float) -> dict[str, Any]:
        return {
            "stale": 1,
            "confirmed": confirmed,
            "interval": {"earliest": earliest, "p50": 9.0, "p90": 20.0, "latest": None},
        }

    return {
        "seed": 17,
        "max_idle": 5,
        "timed_out": False,
        "truth": {"trivial-rewrite": 8.3},
        "truth_log": {"trivial-rewrite": 8.3},
        "last_alive": {"trivial-rewrite": 8.28},
        "engines": {
            "log": {"daemons": {"trivial-rewrite": said(confirmed_log)}},
            "log+proc": {"daemons": {"trivial-rewrite": said(8.32)}},
        },
    }


def test_a_trial_within_the_rules_passes() -> None:
    assert violations(result()) == []


def rewrite(r: dict[str, Any], engine: str = "log") -> dict[str, Any]:
    row: dict[str, Any] = r["engines"][engine]["daemons"]["trivial-rewrite"]
    return row


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.update(timed_out=True), "never all exited"),
        (lambda r: r["truth"].update({"trivial-rewrite": None}), "no truth"),
        (lambda r: rewrite(r).update(interval=None), "no live_interval"),
        (lambda r: rewrite(r)["interval"].update(earliest=8.5), "after truth"),
        (lambda r: rewrite(r).update(confirmed=None), "never confirmed"),
        (lambda r: rewrite(r).update(confirmed=8.0), "before last seen alive"),
        (lambda r: rewrite(r, "log+proc").update(confirmed=10.4), "later than 10.30"),
        # from the log: 1 s stamps + 1 s noise + max_idle 5 s + ipc_idle 5 s
        (lambda r: rewrite(r).update(confirmed=20.4), "later than 20.30"),
    ],
)
def test_each_rule_can_fail(change: Any, expected: str) -> None:
    broken = copy.deepcopy(result())
    change(broken)
    found = violations(broken)
    assert found and all(text.startswith("seed 17") for text in found)
    assert any(expected in text for text in found), found


def test_a_seed_gives_the_same_plan() -> None:
    assert plan_trial(5000) == plan_trial(5000)
    assert plan_trial(5000) != plan_trial(5001)
