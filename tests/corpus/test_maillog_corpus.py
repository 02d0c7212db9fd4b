"""Unrecognized Postfix lines stay below 0.5% on every log of the shared corpus.

Reads ../shared/corpus/INDEX.tsv (class ``log``) relative to the repository root and
prints the per-file rates (``pytest -s`` shows them). A few corpus files are test fixtures
of other parsers that contain strings no Postfix ever logged (``Useless Payload``,
``Unsupported``, empty messages, lines cut off mid-word); those exact messages are listed
in SYNTHETIC below with the file they come from, are reported separately and do not count
against the rate. Any other unrecognized line does.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pfwatch.core.fold import run
from pfwatch.core.state import EngineState, Settings
from pfwatch.events import Finding, LogEvent, Tick
from pfwatch.maillog.reader import LogClassifier, iter_log_events

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
LIMIT = 0.005

# message text (after "tag[pid]: ") -> why it is not a real Postfix line
SYNTHETIC = {
    "Useless Payload": "lightmeter logeater tests: filler text",
    "Something not supported": "lightmeter dirwatcher regression test: filler text",
    "Unsupported": "postfix_exporter tests: a made-up line per daemon",
    "foo": "postfix_exporter tests: a made-up postscreen line",
    "a": "lightmeter dirwatcher test: a one-letter filler",
    "CONNECT": "lightmeter dirwatcher test: a postscreen line cut after its first word",
    "addr": "lightmeter dirwatcher test: a dnsblog line cut after its first word",
    "": "Feandil/lightmeter parser tests: empty messages",
}


def corpus_logs() -> list[str]:
    index = CORPUS / "INDEX.tsv"
    if not index.is_file():
        return []
    with index.open(encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t")
        return [row[0] for row in rows if len(row) > 1 and row[1] == "log"]


LOGS = corpus_logs()


def message_of(line: str) -> str:
    _, sep, message = line.partition("]:")
    return message.removeprefix(" ") if sep else line.rpartition(": ")[2]


@pytest.mark.skipif(not LOGS, reason="shared corpus (../shared/corpus/INDEX.tsv) not found")
@pytest.mark.parametrize("name", LOGS)
def test_unrecognized_below_half_a_percent(name: str) -> None:
    classifier = LogClassifier(keep_unrecognized=10_000)
    for _ in iter_log_events([str(CORPUS / name)], classifier):
        pass
    stats = classifier.stats
    residue = [line for line in stats.unrecognized_samples if message_of(line) not in SYNTHETIC]
    synthetic = stats.lines_unrecognized - len(residue)
    counted = stats.lines_postfix - synthetic
    rate = len(residue) / counted if counted else 0.0
    print(
        f"{rate:7.3%} unrecognized ({len(residue)}/{counted}; {synthetic} synthetic, "
        f"{stats.lines_malformed} malformed, {stats.lines_total} lines) {name}"
    )
    assert stats.lines_recognized + stats.lines_unrecognized == stats.lines_postfix
    assert rate < LIMIT, f"{name}: {residue[:10]}"


@pytest.mark.skipif(not LOGS, reason="shared corpus (../shared/corpus/INDEX.tsv) not found")
def test_synthetic_list_is_needed() -> None:
    """Every SYNTHETIC entry still occurs in the corpus; stale entries must go."""
    seen: set[str] = set()
    for name in LOGS:
        classifier = LogClassifier(keep_unrecognized=10_000)
        for _ in iter_log_events([str(CORPUS / name)], classifier):
            pass
        seen.update(message_of(line) for line in classifier.stats.unrecognized_samples)
    assert set(SYNTHETIC) <= seen, sorted(set(SYNTHETIC) - seen)


def _findings(events: list[LogEvent]) -> list[Finding]:
    state = EngineState(settings=Settings())
    return run(state, [*events, Tick(at=max(e.at for e in events) + 3600)])


@pytest.mark.skipif(not LOGS, reason="shared corpus (../shared/corpus/INDEX.tsv) not found")
@pytest.mark.parametrize("name", LOGS)
def test_coalesced_stream_folds_to_the_same_findings(name: str) -> None:
    """What explain and watch read (coalesced) concludes what every line concludes."""
    every = list(iter_log_events([str(CORPUS / name)], LogClassifier()))
    coalesced = list(iter_log_events([str(CORPUS / name)], LogClassifier(coalesce_activity=True)))
    if not every:
        assert not coalesced
        return
    assert _findings(coalesced) == _findings(every)
