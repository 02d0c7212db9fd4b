"""Monitoring-plugin output: one status line with performance data, then long output.

Follows the Monitoring Plugins Development Guidelines (see docs/change-window.md): the
first line is ``PFWATCH <STATUS> - <summary> | <perfdata>``, later lines are long output,
everything goes to stdout and the exit code (not the status word) is authoritative.
Perfdata is ``'label'=value[UOM];[warn];[crit];[min];[max]``; labels are quoted only when
they must be, values never use scientific notation, unknown values are ``U``.

Inputs: a :class:`PluginReport`. Outputs: text. Errors: ``ValueError`` for a label that
cannot be written (``=`` in it) or a unit outside the guideline's list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pfwatch.errors import ExitStatus

STATUS_WORDS: dict[ExitStatus, str] = {
    ExitStatus.OK: "OK",
    ExitStatus.PENDING: "WARNING",
    ExitStatus.ACTION_NEEDED: "CRITICAL",
    ExitStatus.UNKNOWN: "UNKNOWN",
}

UNITS: frozenset[str] = frozenset({"", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"})
"""Units of measure the guidelines allow (developer-guidelines.xml "Performance data")."""


def format_number(value: float | None) -> str:
    """A perfdata number: plain decimal, no exponent, ``U`` when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "U"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def format_label(label: str) -> str:
    """Quote a label when it holds spaces or quotes (a quote is doubled inside quotes)."""
    if not label or "=" in label:
        raise ValueError(f"perfdata label {label!r} is empty or contains '='")
    if any(ch in label for ch in " '\t"):
        return "'" + label.replace("'", "''") + "'"
    return label


@dataclass(frozen=True, slots=True)
class Perfdatum:
    """One performance-data item; ``warn``/``crit`` are range expressions (``10``, ``@5:9``)."""

    label: str
    value: float | None
    uom: str = ""
    warn: str = ""
    crit: str = ""
    minimum: float | None = 0
    maximum: float | None = None

    def render(self) -> str:
        if self.uom not in UNITS:
            raise ValueError(f"perfdata unit {self.uom!r} is not one of {sorted(UNITS)}")
        value = format_number(self.value)
        unit = self.uom if value != "U" else ""
        parts = [
            f"{format_label(self.label)}={value}{unit}",
            self.warn,
            self.crit,
            "" if self.minimum is None else format_number(self.minimum),
            "" if self.maximum is None else format_number(self.maximum),
        ]
        return ";".join(parts).rstrip(";")


@dataclass(frozen=True, slots=True)
class PluginReport:
    """What a monitoring check says: status, a short summary, perfdata and detail lines."""

    status: ExitStatus
    summary: str
    perfdata: tuple[Perfdatum, ...] = ()
    details: tuple[str, ...] = field(default_factory=tuple)


def render_plugin_output(report: PluginReport, service: str = "PFWATCH") -> str:
    """The full plugin output (first line, then long output), ending with a newline."""
    summary = " ".join(report.summary.replace("|", "/").split())
    first = f"{service} {STATUS_WORDS[report.status]} - {summary}"
    if report.perfdata:
        first += " | " + " ".join(p.render() for p in report.perfdata)
    lines = [first, *(d.replace("|", "/") for d in report.details)]
    return "\n".join(lines) + "\n"


def parse_range(text: str) -> tuple[float, float, bool]:
    """Parse a guideline range ``[@]start:end`` into (low, high, alert_inside).

    ``10`` means alert outside 0..10; ``10:`` means below 10; ``~:10`` means above 10;
    ``@10:20`` means alert inside 10..20. Raises ``ValueError`` on a malformed range.
    """
    inside = text.startswith("@")
    body = text[1:] if inside else text
    if not body:
        raise ValueError(f"empty range {text!r}")
    if ":" in body:
        start_text, end_text = body.split(":", 1)
    else:
        start_text, end_text = "0", body
    low = -math.inf if start_text == "~" else float(start_text or 0)
    high = math.inf if end_text == "" else float(end_text)
    if low > high:
        raise ValueError(f"range {text!r} has start above end")
    return low, high, inside


def range_alerts(text: str, value: float) -> bool:
    """True when ``value`` triggers the range ``text`` (empty range never alerts)."""
    if not text:
        return False
    low, high, inside = parse_range(text)
    within = low <= value <= high
    return within if inside else not within
