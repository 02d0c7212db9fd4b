"""Randomized real-Postfix trials (:mod:`pfwatch.testing.trials`): pfwatch vs /proc.

Each case runs one trial: random ``max_idle``, ``max_use``, process limit, Poisson traffic
with bursts and gaps from several clients, one random edit; the truth is the process table
polled every 20 ms. A few trials by default; ``PFWATCH_CALIBRATION_TRIALS=N`` runs N,
``PFWATCH_CALIBRATION_SEED=S`` starts at seed S (each trial prints its seed: rerun one
with ``PFWATCH_CALIBRATION_TRIALS=1 PFWATCH_CALIBRATION_SEED=S``). The calibration
statistics over hundreds of trials are ``bench/calibration.py``'s job; here each trial
must meet the rules that hold for every single one.

Asserted per trial: :func:`pfwatch.testing.trials.violations` (the edit-time
``live_interval.earliest`` never after the truth; every decisive daemon's live time
confirmed, never before the last poll that saw the process, and not later than the
truth by more than its bound). How close the log-only inference of trivial-rewrite's
exit comes (+1.5 s) and the interval's coverage are statistics over many trials:
bench/calibration.py.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from pfwatch.testing import trials

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

TRIALS = int(os.environ.get("PFWATCH_CALIBRATION_TRIALS", "3"))
FIRST_SEED = int(os.environ.get("PFWATCH_CALIBRATION_SEED", str(random.randrange(1, 10**6))))


@pytest.fixture(scope="module")
def _available() -> None:
    from pfwatch.instance.local import unavailable_reason  # noqa: PLC0415

    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + TRIALS))
def test_random_trial(
    seed: int, _available: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    print(f"PFWATCH_CALIBRATION_SEED={seed}")
    trace = trials.run_trial(seed)
    result = trials.score(trace)
    print(trials.summary_line(result))
    print("CALIBRATION-TRIAL " + json.dumps(result))
    assert trials.violations(result) == []
