"""The human sentence for live_interval."""

from __future__ import annotations

from pfwatch.sinks.interval_text import describe


def stamp(at: float) -> str:
    return f"t{at:g}"


def test_bounded_interval_names_the_90_percent_range_and_max_use() -> None:
    text = describe({"earliest": 12.0, "p50": 20.0, "p90": 40.0, "latest": 95.0}, stamp)
    assert text == (
        "live between t12 and t40 (90%), most likely by t20; as long as the current "
        "traffic continues it may take until t95 (each old process serves at most "
        "max_use clients)"
    )


def test_unbounded_and_unknown() -> None:
    held = describe({"earliest": 12.0, "p50": None, "p90": None, "latest": None}, stamp)
    assert held is not None and held.startswith("live no earlier than t12;")
    assert "not live before the traffic pauses" in held
    assert describe({"earliest": None, "p50": None}, stamp) is None
    assert describe(None, stamp) is None
    guess = describe(
        {
            "earliest": 1.0,
            "p50": 2.0,
            "p90": 3.0,
            "latest": None,
            "why": "too little traffic history for smtp (under 10 s of log): the rate is a guess",
        },
        stamp,
    )
    assert guess is not None and guess.endswith(
        "(too little traffic history for smtp (under 10 s of log))"
    )
