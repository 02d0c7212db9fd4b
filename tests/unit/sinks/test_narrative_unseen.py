"""The narrative names services that share a reason for unseen processes together."""

from __future__ import annotations

from pfwatch.sinks.narrative import _unseen_sentences


def entry(daemon: str, service: str, until: float | None = 1_700_000_100.0) -> dict[str, object]:
    return {
        "daemon": daemon,
        "service": service,
        "until": until,
        "why": f"unknown pre-existing processes: so a {daemon} that was idle cannot be ruled out",
    }


def test_shared_reasons_make_one_sentence_and_distinct_ones_stay_apart() -> None:
    sentences = _unseen_sentences(
        [entry("smtpd", "smtp"), entry("bounce", "defer"), entry("pickup", "pickup", None)]
    )
    assert len(sentences) == 2
    assert sentences[0].startswith("smtpd (smtp), bounce (defer): ")
    assert "so a process that was idle" in sentences[0] and "(until " in sentences[0]
    assert sentences[1] == (
        "pickup (pickup): unknown pre-existing processes: so a pickup that was idle "
        "cannot be ruled out."
    )
