"""Postfix time values as conv_time() reads them (src/global/conv_time.c)."""

from __future__ import annotations

import pytest

from pfwatch.knowledge.timevalue import PostfixTime, seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100s", 100),
        ("100", 100),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        (" 7s", 7),
        ("+3", 3),
        ("0", 0),
    ],
)
def test_accepted(text: str, expected: int) -> None:
    parsed = PostfixTime.parse(text)
    assert parsed is not None
    assert parsed.seconds == expected


@pytest.mark.parametrize("text", ["", "s", "1.5s", "-1", "10S", "10 s", "10ss", "3x", "9" * 12])
def test_refused(text: str) -> None:
    assert PostfixTime.parse(text) is None


def test_default_unit_and_fallback() -> None:
    parsed = PostfixTime.parse("2", default_unit="m")
    assert parsed is not None
    assert parsed.seconds == 120
    assert seconds(None, 9.0) == 9.0
    assert seconds("bad", 9.0) == 9.0
    assert seconds("4s", 9.0) == 4.0
