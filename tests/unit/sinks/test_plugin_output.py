"""Monitoring-plugin output: status line, perfdata syntax, ranges (developer guidelines)."""

from __future__ import annotations

import re

import pytest

from pfwatch.errors import ExitStatus
from pfwatch.sinks.plugin_output import (
    Perfdatum,
    PluginReport,
    format_label,
    format_number,
    parse_range,
    range_alerts,
    render_plugin_output,
)

# 'label'=value[UOM];[warn];[crit];[min];[max] with the guideline's character sets.
PERF = re.compile(
    r"^('(?:[^']|'')+'|[^'= ]+)=(-?[0-9.]+|U)(s|ms|us|%|B|KB|MB|TB|c)?"
    r"(;[@~0-9.:-]*){0,4}$"
)


def test_ok_line_with_perfdata() -> None:
    report = PluginReport(
        ExitStatus.OK,
        "no pending edits",
        (
            Perfdatum("pending", 0, warn="0", crit="0"),
            Perfdatum("seconds_to_live", None, "s"),
        ),
    )
    out = render_plugin_output(report)
    assert out == "PFWATCH OK - no pending edits | pending=0;0;0;0 seconds_to_live=U;;;0\n"
    for item in out.split(" | ", 1)[1].split():
        assert PERF.match(item), item


@pytest.mark.parametrize(
    ("status", "word"),
    [
        (ExitStatus.OK, "OK"),
        (ExitStatus.PENDING, "WARNING"),
        (ExitStatus.ACTION_NEEDED, "CRITICAL"),
        (ExitStatus.UNKNOWN, "UNKNOWN"),
    ],
)
def test_status_words(status: ExitStatus, word: str) -> None:
    assert render_plugin_output(PluginReport(status, "x")).startswith(f"PFWATCH {word} - x")


def test_long_output_and_pipe_in_text_cannot_break_the_format() -> None:
    report = PluginReport(
        ExitStatus.PENDING,
        "edit a|b pending",
        (Perfdatum("pending", 1),),
        ("main.cf: smtpd_banner | changed",),
    )
    first, second = render_plugin_output(report).splitlines()
    assert first.count("|") == 1
    assert "|" not in second


def test_numbers_never_in_scientific_notation() -> None:
    assert format_number(1e-7) == "0"
    assert format_number(12345678901.5) == "12345678901.5"
    assert format_number(2.0) == "2"
    assert format_number(float("nan")) == "U"
    assert "e" not in Perfdatum("x", 1e20, "s").render()


def test_labels_are_quoted_when_needed() -> None:
    assert format_label("stale") == "stale"
    assert format_label("stale smtpd") == "'stale smtpd'"
    assert format_label("it's") == "'it''s'"
    with pytest.raises(ValueError):
        format_label("a=b")
    with pytest.raises(ValueError):
        Perfdatum("x", 1, "minutes").render()


@pytest.mark.parametrize(
    ("text", "value", "alerts"),
    [
        ("10", 11, True),
        ("10", 10, False),
        ("10", -1, True),
        ("10:", 9, True),
        ("10:", 10, False),
        ("~:10", -50, False),
        ("~:10", 11, True),
        ("@10:20", 15, True),
        ("@10:20", 21, False),
        ("", 99, False),
        ("0", 1, True),
    ],
)
def test_ranges(text: str, value: float, alerts: bool) -> None:
    assert range_alerts(text, value) is alerts


def test_bad_range() -> None:
    with pytest.raises(ValueError):
        parse_range("20:10")
    with pytest.raises(ValueError):
        parse_range("@")
