"""The worker-process reader gives the same events, statistics and explain document."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfwatch.cli.explain_cmd import explain_document
from pfwatch.errors import SourceUnavailable
from pfwatch.maillog.reader import LogClassifier, iter_log_events
from pfwatch.maillog.worker import BATCH, WorkerReader

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpus"
REAL_LOG = CORPUS / "reallogs-kdent_postfix_log_analysis" / "mail3.log"
DEMO_LOG = Path(__file__).resolve().parents[3] / "pfwatch" / "demo" / "scenario.log"


def _a_log(tmp_path: Path) -> Path:
    """A real log when the corpus is present, else the shipped demo scenario, made longer
    than a few batches so that events cross several messages."""
    source = REAL_LOG if REAL_LOG.is_file() else DEMO_LOG
    if not source.is_file():
        pytest.skip("neither the shared corpus nor the demo scenario log is present")
    text = source.read_bytes()
    copies = max(1, (3 * BATCH) // max(1, text.count(b"\n")) + 1)
    log = tmp_path / "mail.log"
    log.write_bytes(text * copies)
    return log


def test_same_events_and_statistics_as_in_process(tmp_path: Path) -> None:
    log = _a_log(tmp_path)
    options = {"coalesce_activity": True, "keep_unrecognized": 50}
    classifier = LogClassifier(**options)  # type: ignore[arg-type]
    serial = list(iter_log_events([str(log)], classifier))
    reader = WorkerReader([str(log)], **options)
    parallel = list(reader.events())
    assert len(serial) > BATCH
    assert parallel == serial
    assert reader.stats.to_json() == classifier.stats.to_json()
    assert reader.stats.unrecognized_samples == classifier.stats.unrecognized_samples


def test_parallel_explain_gives_identical_findings(tmp_path: Path) -> None:
    log = _a_log(tmp_path)
    serial = explain_document([str(log)], parallel=False, keep_unrecognized=100)
    parallel = explain_document([str(log)], parallel=True, keep_unrecognized=100)
    assert serial["processes"]
    assert parallel == serial


def test_demo_with_changes_is_identical_in_parallel() -> None:
    if not DEMO_LOG.is_file():
        pytest.skip("the demo scenario log is not shipped in this build")
    changes = ("07:00:30", "07:10:00=main.cf")
    serial = explain_document([str(DEMO_LOG)], parallel=False, changed_at=changes, year=2024)
    parallel = explain_document([str(DEMO_LOG)], parallel=True, changed_at=changes, year=2024)
    assert parallel == serial


def test_an_unreadable_log_fails_before_the_worker_starts(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable):
        WorkerReader([str(tmp_path / "missing.log")])


def test_stats_are_there_only_after_the_last_event(tmp_path: Path) -> None:
    log = _a_log(tmp_path)
    reader = WorkerReader([str(log)])
    with pytest.raises(RuntimeError):
        _ = reader.stats
    events = reader.events()
    next(events)
    events.close()  # stopping early ends the child
    with pytest.raises(RuntimeError):
        _ = reader.stats
