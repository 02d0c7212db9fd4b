"""Calibrated live-time intervals (pfwatch.core.interval): order, history, bursts."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.core import interval, predict
from pfwatch.core.fold import run
from pfwatch.core.interval import Persistence
from pfwatch.core.state import EngineState, Settings
from pfwatch.events import Finding
from pfwatch.testing.streams import StreamBuilder, make_facts, table_edit

T0 = 1_700_000_000.0


def detected(b: StreamBuilder) -> dict[str, object]:
    state = EngineState(settings=Settings(max_idle=10))
    found: list[Finding] = run(state, b.events)
    return next(f for f in found if f.name == "change_detected").data["live_interval"]


def traffic(gaps: list[float], *, max_idle: int = 10, max_use: int = 100) -> StreamBuilder:
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=max_idle, max_use=max_use)
    b.snapshot(facts)
    for i, gap in enumerate(gaps):
        b.wait(gap).session(100 + i % 3, duration=1, queue_id=f"Q{i}")
    return b.change(facts, parameters=["smtpd_banner"])


def ordered(interval: dict[str, object]) -> None:
    earliest, p50, p90, latest = (interval[k] for k in ("earliest", "p50", "p90", "latest"))
    assert isinstance(earliest, float)
    if p50 is not None:
        assert isinstance(p50, float) and earliest <= p50
        assert p90 is None or p50 <= p90
    if latest is not None and p90 is not None:
        assert p90 <= latest  # type: ignore[operator]


@settings(max_examples=25, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=20), min_size=0, max_size=25),
    max_idle=st.integers(min_value=2, max_value=30),
    max_use=st.integers(min_value=1, max_value=40),
)
def test_earliest_p50_p90_latest_are_ordered(gaps: list[int], max_idle: int, max_use: int) -> None:
    interval = detected(traffic([float(g) for g in gaps], max_idle=max_idle, max_use=max_use))
    ordered(interval)
    for row in interval["daemons"].values():  # type: ignore[attr-defined]
        ordered(row)


def test_no_history_widens_and_says_why() -> None:
    short = detected(traffic([0.0, 1.0, 1.0]))
    assert "too little traffic history" in str(short["why"])
    long = detected(traffic([0.0] + [5.0] * 40 + [1.0, 1.0]))
    assert "too little traffic history" not in str(long["why"])
    assert "simulated with the recent arrival rates" in str(long["why"])

    def width(i: dict[str, object]) -> float:
        return float(i["p90"]) - float(i["earliest"])  # type: ignore[arg-type]

    assert width(short) >= width(long)


def test_a_burst_never_narrows_the_interval_below_the_long_window() -> None:
    steady = [4.0] * 30  # 0.25/s for two minutes
    burst = detected(traffic([*steady, *([0.0] * 15)], max_use=20))
    only_burst = detected(traffic([0.0] * 15 + [0.0], max_use=20))
    # after a burst the long window still counts: the p90 stays later than if the
    # burst rate were all there was
    assert float(burst["p90"]) >= float(only_burst["p90"])  # type: ignore[arg-type]


def test_multi_server_traffic_can_hold_it_for_ever() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({"virtual_mailbox_domains": "/v"}, max_idle=10, max_use=100)
    b.snapshot(facts)
    for i in range(30):
        b.wait(1.0).message("cleanup", 20, f"Q{i}").message("qmgr", 21, f"Q{i}")
    b.change(facts, files=["/v"], tables=[table_edit("/v", ["virtual_mailbox_domains"])])
    interval = detected(b)
    assert interval["latest"] is None
    assert "no latest bound" in str(interval["why"])
    rewrite = interval["daemons"]["trivial-rewrite"]  # type: ignore[index]
    # one request a second: it cannot idle out while the traffic goes on
    assert rewrite["p50"] is None or rewrite["p50"] > T0 + 30 + 5 + 10


def test_needs_action_has_no_interval() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=10, max_use=100)
    b.snapshot(facts).session(7, duration=1)
    b.change(facts, parameters=["inet_interfaces"])
    interval = detected(b)
    assert interval["p50"] is None and "needs an action" in str(interval["why"])


def test_traffic_persistence_draws_stop_share_and_mean() -> None:
    model = Persistence(stop=0.3, shape=2.0, mean=12.0)
    rng = random.Random(7)
    draws = [model.draw(rng) for _ in range(20000)]
    going = [d for d in draws if d > 0]
    assert 1 - len(going) / len(draws) == pytest.approx(0.3, abs=0.015)
    assert sum(going) / len(going) == pytest.approx(12.0, rel=0.03)
    # Gamma(2): fewer very short continuations than an exponential of the same mean
    assert sum(d < 1.2 for d in going) / len(going) < 0.03
    assert Persistence(stop=1.0, shape=2.0, mean=12.0).draw(rng) == 0.0


def rewrite_stream(seconds: int) -> StreamBuilder:
    """A routing edit after ``seconds`` of one message a second (smtpd, cleanup, qmgr)."""
    b = StreamBuilder(T0)
    facts = make_facts({"virtual_alias_domains": "a.example"}, max_idle=10, max_use=100)
    b.snapshot(facts)
    for i in range(seconds):
        b.wait(1.0).session(10, duration=0.2, queue_id=f"Q{i}")
        b.message("cleanup", 20, f"Q{i}").message("qmgr", 21, f"Q{i}")
        b.wait(0.1).message("qmgr", 21, f"Q{i}")  # its "removed" line
    return b.change(
        make_facts({"virtual_alias_domains": "b.example"}, max_idle=10, max_use=100),
        parameters=["virtual_alias_domains"],
    )


def test_trivial_rewrite_arrivals_are_one_per_message() -> None:
    b = rewrite_stream(40)
    for i in range(5):  # a burst: messages 0.3 s apart from two smtpd processes
        b.wait(0.3).session(11 + i % 2, duration=0.1, queue_id=f"B{i}")
        b.message("cleanup", 20, f"B{i}").message("qmgr", 21, f"B{i}")
    b.wait(0.5).log("noqueue", "smtpd", 10, client="client[127.0.0.1]")
    state = EngineState(settings=Settings(max_idle=10))
    run(state, b.events)
    # smtpd, cleanup and qmgr each asked for every message; the NOQUEUE reject asked too
    assert len(state.arrivals["postfix/trivial-rewrite"]) == 40 + 5 + 1


def test_longer_persistence_moves_p50_later() -> None:
    b = rewrite_stream(40)
    state = EngineState(settings=Settings(max_idle=10))
    run(state, b.events)
    change = next(iter(state.changes.values()))
    pred = predict.change_prediction(state, change)

    def p50(model: Persistence) -> float:
        said = interval.live_interval(state, change, pred["stale"], False, persistence=model)
        value = said["daemons"]["trivial-rewrite"]["p50"]
        return math.inf if value is None else float(value)

    stops = p50(Persistence(stop=1.0, shape=2.0, mean=10.0))
    brief = p50(Persistence(stop=0.0, shape=2.0, mean=5.0))
    long = p50(Persistence(stop=0.0, shape=2.0, mean=40.0))
    # the traffic stops now: qmgr's last request (0.1 s before the edit) is let go after
    # ipc_idle (5 s), then trivial-rewrite idles out (max_idle 10 s)
    assert stops == pytest.approx(change.at - 0.1 + 5 + 10, abs=1.5)
    assert stops < brief < long


def test_a_burst_after_the_edit_updates_the_interval_later() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({"virtual_alias_domains": "a.example"}, max_idle=10, max_use=100)
    b.snapshot(facts)
    for i in range(30):  # one message every 4 s for two minutes
        b.wait(4.0).message("cleanup", 20, f"Q{i}").message("qmgr", 21, f"Q{i}")
    b.change(
        make_facts({"virtual_alias_domains": "b.example"}, max_idle=10, max_use=100),
        parameters=["virtual_alias_domains"],
    )
    for i in range(40):  # then a burst: five a second for eight seconds
        b.wait(0.2).message("cleanup", 20, f"B{i}").message("qmgr", 21, f"B{i}")
        b.tick()
    state = EngineState(settings=Settings(max_idle=10))
    found = run(state, b.events)
    before = next(f for f in found if f.name == "change_detected").data["live_interval"]
    updates = [f.data["live_interval"] for f in found if f.name == "change_prediction_updated"]
    assert updates, "the burst moved nothing"
    after = updates[-1]
    # the traffic that holds trivial-rewrite goes on: the interval moves later, and its
    # earliest bound follows the evidence (the last request, then ipc_idle and max_idle)
    assert float(after["p50"]) > float(before["p50"])
    assert after["p90"] is None or float(after["p90"]) > float(before["p90"])
    assert float(after["earliest"]) >= float(before["earliest"])
