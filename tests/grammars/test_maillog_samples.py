"""The annotated maillog samples: every line gives the event its ``# event:`` line says.

Samples live in grammars/samples/maillog/*.log. A ``# event: {json}`` comment states the
expected LogEvent of the next line (``at`` as ISO 8601 UTC where given); ``# reference:
ISO`` sets the reference time that decides the year of syslog dates. Lines starting with
``{`` are journald JSON records. Also checked: every catalogue row and every envelope
format has at least one sample.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pfwatch.events import LogEvent
from pfwatch.grammars.maillog_catalogue import CATALOGUE
from pfwatch.grammars.maillog_envelope import FORMATS, PREFIXES, SOLARIS_ID
from pfwatch.grammars.maillog_verbose import FORMATS as VERBOSE_FORMATS
from pfwatch.maillog.classify import Classifier
from pfwatch.maillog.envelope import TimestampParser, journal_envelope, parse_envelope
from pfwatch.maillog.reader import LogClassifier

SAMPLES = Path(__file__).resolve().parents[2] / "grammars" / "samples" / "maillog"
DEFAULT_REFERENCE = "2025-06-01T00:00:00+00:00"


@dataclass(frozen=True)
class Sample:
    """One annotated line."""

    file: str
    line_no: int
    line: str
    expected: dict[str, Any]
    reference: float


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def load_samples() -> list[Sample]:
    """Every annotated line of every sample file."""
    samples = []
    for path in sorted(SAMPLES.glob("*.log")):
        expected: dict[str, Any] | None = None
        reference = _seconds(DEFAULT_REFERENCE)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("# event: "):
                expected = json.loads(line[len("# event: ") :])
            elif line.startswith("# reference: "):
                reference = _seconds(line[len("# reference: ") :])
            elif line.startswith("#") or not line.strip():
                continue
            else:
                assert expected is not None, f"{path.name}:{number}: line without # event:"
                samples.append(Sample(path.name, number, line, expected, reference))
                expected = None
    return samples


ALL = load_samples()


def classify(sample: Sample) -> LogEvent | None:
    """The event pfwatch makes of the sample line."""
    classifier = LogClassifier(reference_time=sample.reference, tz=UTC)
    if sample.line.startswith("{"):
        return classifier.feed_journal(json.loads(sample.line))
    return classifier.feed(sample.line.encode("utf-8"))


def message_of(sample: Sample) -> str:
    """The Postfix message text of the sample line."""
    if sample.line.startswith("{"):
        envelope = journal_envelope(json.loads(sample.line))
    else:
        envelope = parse_envelope(sample.line, TimestampParser(sample.reference, UTC))
    assert envelope is not None
    return envelope.message


def test_samples_exist() -> None:
    assert len(ALL) >= 100
    assert len({sample.file for sample in ALL}) >= 10


@pytest.mark.parametrize("sample", ALL, ids=[f"{s.file}:{s.line_no}" for s in ALL])
def test_sample_gives_its_annotated_event(sample: Sample) -> None:
    event = classify(sample)
    assert event is not None, f"{sample.file}:{sample.line_no} gave no event"
    for key, value in sample.expected.items():
        if key == "at":
            assert event.at == pytest.approx(_seconds(value), abs=1e-6)
        else:
            assert getattr(event, key) == value, f"{key} of {sample.file}:{sample.line_no}"
    assert event.daemon == event.program.rpartition("/")[2]


@pytest.mark.parametrize("row", CATALOGUE, ids=[f"{row.kind}@{row.source}" for row in CATALOGUE])
def test_every_catalogue_row_has_a_sample(row: Any) -> None:
    regex = re.compile(row.pattern)
    for sample in ALL:
        daemon = sample.expected["program"].rpartition("/")[2]
        if sample.expected["kind"] != row.kind:
            continue
        if "*" not in row.daemons and daemon not in row.daemons:
            continue
        if regex.match(message_of(sample)):
            return
    generated = [fmt for _, pattern, fmt, _ in VERBOSE_FORMATS if pattern == row.pattern]
    if generated:
        # a generated -v row no recording has shown: its own printf format, filled in
        message = printf(generated[0])
        assert regex.match(message), (row.source, message)
        # a hand-written row of the same text may come first (e.g. "connection closed")
        assert Classifier().classify("qmgr", message)[0] != "unrecognized", message
        return
    pytest.fail(f"no sample line for catalogue row {row.kind} ({row.source})")


_CONVERSION = re.compile(r"%([-+ #0]*)(\*|\d+)?(\.(?:\*|\d+))?(?:hh|h|ll|l|L|q|j|z|t)?([a-zA-Z%])")
_VALUES = {"s": "example.test", "m": "Success", "c": "x", "p": "0x1f"}


def printf(fmt: str) -> str:
    """A C printf format filled with plausible values (what Postfix would log)."""

    def fill(conv: re.Match[str]) -> str:
        flags, width, precision, kind = conv.groups()
        if kind == "%":
            return "%"
        spec = "%" + flags + (width or "").replace("*", "1")
        if kind in "sm":
            return (spec + "s") % _VALUES[kind]
        if kind in "cp":
            return _VALUES[kind]
        if kind in "eEfgG":
            return (spec + (precision or "").replace("*", "1") + kind) % 1.5
        return (spec + ("d" if kind in "iu" else kind)) % 7

    return _CONVERSION.sub(fill, fmt)


def test_every_envelope_format_has_a_sample() -> None:
    seen: set[str] = set()
    for sample in ALL:
        if sample.line.startswith("{"):
            seen.add("journal")
            continue
        envelope = parse_envelope(sample.line, TimestampParser(sample.reference, UTC))
        assert envelope is not None
        seen.update(envelope.format.split("+"))
        if "[ID " in sample.line:
            seen.add(SOLARIS_ID.name)
    wanted = {fmt.name for fmt in (*FORMATS, *PREFIXES)} | {SOLARIS_ID.name, "journal"}
    assert wanted <= seen, f"formats without samples: {sorted(wanted - seen)}"
