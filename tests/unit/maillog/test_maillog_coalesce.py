"""Coalesced replay (``coalesce_activity=True``, what explain and watch read) loses nothing.

The recorded demo scenario is read twice, one event per line and coalesced; both streams
are folded through :func:`pfwatch.core.fold.step` and must give the same findings, and
``pfwatch explain --json`` must print the same document either way. The statistics are
exact in both modes. (The same equivalence on a real Postfix log: the real-Postfix test
tests/integration/test_maillog_realpostfix.py; on the shared corpus:
tests/corpus/test_maillog_corpus.py.)
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pfwatch.cli import explain_cmd
from pfwatch.core.fold import step
from pfwatch.core.state import EngineState, Settings
from pfwatch.events import Event, Finding, LogEvent, Tick
from pfwatch.maillog.reader import LogClassifier, iter_log_events

DEMO = Path(str(resources.files("pfwatch").joinpath("demo", "scenario.log")))


def read(path: Path, *, coalesce: bool) -> tuple[list[LogEvent], dict[str, Any]]:
    classifier = LogClassifier(coalesce_activity=coalesce)
    events = list(iter_log_events([str(path)], classifier))
    return events, classifier.stats.to_json()


def findings_of(events: list[LogEvent]) -> list[Finding]:
    state = EngineState(settings=Settings())
    stream: list[Event] = [*events, Tick(at=events[-1].at + 3600)]
    found: list[Finding] = []
    for event in stream:
        found.extend(step(state, event))
    return found


@pytest.mark.skipif(not DEMO.is_file(), reason="the demo scenario is not in this build")
def test_coalesced_demo_folds_to_the_same_findings() -> None:
    every, every_stats = read(DEMO, coalesce=False)
    coalesced, coalesced_stats = read(DEMO, coalesce=True)
    assert len(coalesced) < len(every)
    assert coalesced_stats == every_stats
    assert {e.kind for e in every} - {e.kind for e in coalesced} == set()
    findings = findings_of(every)
    assert len(findings) > 10
    assert findings_of(coalesced) == findings


@pytest.mark.skipif(not DEMO.is_file(), reason="the demo scenario is not in this build")
def test_explain_document_is_the_same_with_and_without_coalescing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coalesced = explain_cmd.explain_document([str(DEMO)])

    class EveryLine(LogClassifier):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["coalesce_activity"] = False
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(explain_cmd, "LogClassifier", EveryLine)
    assert explain_cmd.explain_document([str(DEMO)]) == coalesced


def test_a_dropped_repeat_would_not_have_changed_the_engine(tmp_path: Path) -> None:
    """Recipient lines of one message in one second: one event; a new message: a new one."""
    log = tmp_path / "maillog"
    head = "Jun  1 00:00:0{} mx postfix/discard[40]: "
    lines = [
        head.format(1) + "3A1973E542: to=<a@x.test>, relay=none, status=sent",
        head.format(1) + "3A1973E542: to=<b@x.test>, relay=none, status=sent",
        head.format(1) + "4B2084F653: to=<a@x.test>, relay=none, status=sent",
        head.format(2) + "4B2084F653: to=<b@x.test>, relay=none, status=sent",
    ]
    log.write_text("\n".join(lines) + "\n")
    every, _ = read(log, coalesce=False)
    coalesced, stats = read(log, coalesce=True)
    assert [e.line_no for e in coalesced] == [1, 3, 4]
    assert stats["lines_recognized"] == 4
    assert findings_of(coalesced) == findings_of(every)
