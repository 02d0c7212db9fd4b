"""The engine's derived lookups stay equal to what the state itself says.

They are kept current by the process model as it goes (not persisted): after a replay of
a real log (the demo scenario, or a corpus log) they must equal lookups built afresh from
the same state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pfwatch.cli.explain_cmd import _events, load_facts
from pfwatch.core import processes as pm
from pfwatch.core.fold import step
from pfwatch.core.state import EngineState, Lookups, from_json, to_json
from pfwatch.maillog.reader import LogClassifier, iter_log_events

ROOT = Path(__file__).resolve().parents[3]
LOGS = (
    ROOT / "pfwatch" / "demo" / "scenario.log",
    ROOT.parent / "shared" / "corpus" / "reallogs-kdent_postfix_log_analysis" / "mail3.log",
)


def _snapshot(index: Lookups) -> tuple[object, ...]:
    return ({i: list(group) for i, group in index.rewriters.items() if group},)


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_lookups_equal_a_fresh_build_all_along(log: Path) -> None:
    if not log.is_file():
        pytest.skip(f"{log.name} is not here")
    state = EngineState()
    events = iter(iter_log_events([str(log)], LogClassifier(coalesce_activity=True)))
    for n, event in enumerate(_events(events, [], load_facts(None, None))):
        step(state, event)
        if n % 50 and n > 5:
            continue
        fresh = from_json(to_json(state))
        index = pm.lookups(state)
        assert _snapshot(index) == _snapshot(pm.lookups(fresh))
        assert {p.key for p in state.history} <= index.exited_keys
