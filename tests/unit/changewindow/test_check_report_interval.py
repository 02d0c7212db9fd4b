"""check's pending items carry live_interval and say it in words."""

from __future__ import annotations

from pfwatch.changewindow.check_report import _change_lines, change_dict
from pfwatch.core.records import Prediction
from pfwatch.core.state import Change

NOW = 1_700_000_000.0


def test_pending_change_shows_its_interval() -> None:
    change = Change(
        change_id="c1",
        at=NOW - 5,
        files=["/etc/postfix/main.cf"],
        parameters=["smtpd_banner"],
        services=[],
        tables=[],
        digest="d",
        stale=["postfix/smtpd/7"],
        prediction=Prediction(NOW + 10, None, None, stale_count=1, needs=()),
        live_interval={"earliest": NOW + 2, "p50": NOW + 12, "p90": NOW + 40, "latest": NOW + 90},
    )
    assert change_dict(change, NOW)["live_interval"]["p90"] == NOW + 40
    lines = "\n".join(_change_lines("pending", change, NOW))
    assert "with the current traffic: live between" in lines
    assert "(90%), most likely by" in lines and "(in 12 s)" in lines
    assert "may take until" in lines
