"""The report of ``pfwatch check``: verdict (exit status), JSON document, text, plugin line.

Inputs: an :class:`~pfwatch.changewindow.precheck.Assessment` and the current time. Outputs:
:class:`Verdict` (monitoring-plugin exit status and summary), the ``--json`` document
(:func:`report_dict`, keys documented in docs/change-window.md), human text
(:func:`render_text`) and the monitoring-plugin report (:func:`plugin_report`).
Errors: none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfwatch.changewindow.precheck import Assessment
from pfwatch.core.changes import needs_actions
from pfwatch.core.state import Change
from pfwatch.errors import ExitStatus
from pfwatch.knowledge import releases
from pfwatch.sinks.interval_text import describe
from pfwatch.sinks.plugin_output import Perfdatum, PluginReport, range_alerts


@dataclass(frozen=True, slots=True)
class Verdict:
    """The exit status and one-line summary of an assessment."""

    status: ExitStatus
    summary: str
    pending: int
    needs_action: int
    stale: int
    seconds_to_live: float | None
    oldest_age: float | None


def _when(at: float | None, now: float) -> str:
    if at is None:
        return "unknown"
    stamp = time.strftime("%H:%M:%SZ", time.gmtime(at))
    delta = at - now
    return f"{stamp} (in {delta:.0f} s)" if delta >= 0 else f"{stamp} ({-delta:.0f} s ago)"


@dataclass(frozen=True, slots=True)
class AgeThresholds:
    """``-w``/``-c`` range expressions on the age (seconds) of the oldest pending edit.

    When given, an edit that goes live by itself is WARNING only once its age alerts the
    warning range and CRITICAL once it alerts the critical range (so a routine edit that is
    on its way does not page anyone); edits that need an action stay CRITICAL.
    """

    warning: str = ""
    critical: str = ""

    @property
    def given(self) -> bool:
        return bool(self.warning or self.critical)


def verdict(assessment: Assessment, now: float, thresholds: AgeThresholds | None = None) -> Verdict:
    """Monitoring-plugin semantics: 0 nothing pending, 1 goes live by itself, 2 needs an
    action (or the configuration is broken), 3 is left to the caller (cannot tell)."""
    pending = assessment.pending()
    blocked = [c for c in pending if needs_actions(c.needs)]
    lint_errors = [f for f in assessment.lint if f.severity == "error"]
    stale = sum(len([k for k in c.stale if k not in c.resolved]) for c in pending)
    predicted = [
        c.prediction.predicted_live_at if c.prediction else None
        for c in pending
        if not needs_actions(c.needs)
    ]
    known = [p for p in predicted if isinstance(p, (int, float))]
    seconds = max(0.0, max(known) - now) if known and len(known) == len(predicted) else None
    oldest = now - pending[0].at if pending else None
    parts: list[str] = []
    if blocked:
        actions = sorted({a for c in blocked for a in needs_actions(c.needs)})
        parts.append(f"{len(blocked)} pending edit(s) need {' + '.join(actions)}")
    free = len(pending) - len(blocked)
    if free:
        if seconds is not None:
            parts.append(
                f"{free} pending edit(s) go live by themselves by {_when(now + seconds, now)}"
            )
        else:
            parts.append(f"{free} pending edit(s) go live by themselves (time unknown)")
    if lint_errors:
        parts.append(f"{len(lint_errors)} configuration error(s) (see lint)")
    if blocked or lint_errors:
        status = ExitStatus.ACTION_NEEDED
    elif pending and thresholds is not None and thresholds.given and oldest is not None:
        status = ExitStatus.OK
        if range_alerts(thresholds.critical, oldest):
            status = ExitStatus.ACTION_NEEDED
            parts.append(f"oldest pending for {oldest:.0f} s (critical {thresholds.critical})")
        elif range_alerts(thresholds.warning, oldest):
            status = ExitStatus.PENDING
            parts.append(f"oldest pending for {oldest:.0f} s (warning {thresholds.warning})")
    elif pending:
        status = ExitStatus.PENDING
    else:
        status = ExitStatus.OK
        running = "" if assessment.running else "; Postfix is not running"
        parts.append(f"no pending edits{running}")
    summary = "; ".join(parts) + f" (basis: {assessment.basis})"
    return Verdict(status, summary, len(pending), len(blocked), stale, seconds, oldest)


def _label(key: str) -> str:
    """``instance/daemon/pid`` (the engine's process key) as ``daemon[pid]``."""
    parts = key.split("/")
    if len(parts) < 3:
        return key
    pid = parts[-1]
    return f"{parts[-2]}[{'?' if pid.startswith('~') else pid}]"


def change_dict(change: Change, now: float) -> dict[str, Any]:
    """A pending (or staged) change as JSON-ready data."""
    pred = change.prediction
    live_at = pred.predicted_live_at if pred else None
    return {
        "change_id": change.change_id,
        "edited_at": change.at,
        "files": list(change.files),
        "parameters": list(change.parameters),
        "services": list(change.services),
        "tables": [t.ref for t in change.tables],
        "status": change.status,
        "stale_processes": [_label(k) for k in change.stale if k not in change.resolved],
        "resolved_processes": [_label(k) for k in change.stale if k in change.resolved],
        "affected": [
            {"service": i.service, "type": i.type, "daemon": i.daemon, "mode": i.mode, "why": i.why}
            for i in change.impacts
        ],
        "predicted_live_at": live_at,
        "earliest_live_at": pred.earliest_live_at if pred else None,
        "expected_live_at": pred.expected_live_at if pred else None,
        "live_interval": change.live_interval or None,
        "seconds_to_live": None if live_at is None else max(0.0, live_at - now),
        "needs": needs_actions(change.needs),
        "needs_detail": [
            {"action": n.action, "target": n.target, "why": n.why, "source": n.source}
            for n in change.needs
            if n.satisfied_at is None
        ],
        "advisories": list(change.advisories),
        "live_at": change.live_at,
    }


def report_dict(
    assessment: Assessment, now: float, thresholds: AgeThresholds | None = None
) -> dict[str, Any]:
    """The full ``check --json`` document."""
    result = verdict(assessment, now, thresholds)
    staged: dict[str, Any] | None = None
    if assessment.staged is not None:
        what = assessment.staged
        staged = {
            "path": what.path,
            "diff": what.lines,
            "identical": what.diff.empty,
            "change": change_dict(what.change, now) if what.change is not None else None,
            "after_postmap": (
                change_dict(what.after_postmap, now) if what.after_postmap is not None else None
            ),
        }
    return {
        "status": result.status.name.lower(),
        "exit_code": int(result.status),
        "summary": result.summary,
        "checked_at": now,
        "config_dir": str(assessment.config_dir),
        "basis": assessment.basis,
        "basis_detail": assessment.basis_detail,
        "postfix_release": assessment.release or None,
        "postfix_running": assessment.running,
        "processes": [
            {"pid": p.pid, "daemon": p.daemon, "service": p.service, "started_at": p.started_at}
            for p in assessment.children
        ],
        "pending": [change_dict(c, now) for c in assessment.pending()],
        "tables": [
            {"ref": t.ref.ref, "freshness": t.freshness.state, "parameters": list(t.ref.parameters)}
            for t in assessment.snapshot.tables
            if t.freshness.state
            in ("stale", "not-compiled", "missing", "source-missing", "unreadable")
        ],
        "lint": [f.as_dict() for f in assessment.lint],
        "staged": staged,
        "counts": {
            "pending": result.pending,
            "needs_action": result.needs_action,
            "stale_processes": result.stale,
            "lint_errors": sum(1 for f in assessment.lint if f.severity == "error"),
            "lint_warnings": sum(1 for f in assessment.lint if f.severity == "warning"),
        },
    }


def plugin_report(
    assessment: Assessment, now: float, thresholds: AgeThresholds | None = None
) -> PluginReport:
    """The monitoring-plugin report: status line with perfdata, then one line per item."""
    result = verdict(assessment, now, thresholds)
    limits = thresholds or AgeThresholds()
    errors = sum(1 for f in assessment.lint if f.severity == "error")
    warnings = sum(1 for f in assessment.lint if f.severity == "warning")
    perfdata = (
        Perfdatum("pending", result.pending, warn="0"),
        Perfdatum("needs_action", result.needs_action, crit="0"),
        Perfdatum("stale_processes", result.stale),
        Perfdatum("seconds_to_live", result.seconds_to_live, "s"),
        Perfdatum("oldest_pending_age", result.oldest_age, "s", limits.warning, limits.critical),
        Perfdatum("lint_errors", errors, crit="0"),
        Perfdatum("lint_warnings", warnings),
    )
    return PluginReport(
        result.status, result.summary, perfdata, tuple(detail_lines(assessment, now))
    )


def detail_lines(assessment: Assessment, now: float) -> list[str]:
    """One line per pending edit, table problem, lint finding and staged outcome."""
    lines: list[str] = []
    for change in assessment.pending():
        lines.extend(_change_lines("pending", change, now))
    for finding in assessment.lint:
        lines.append(f"lint {finding.render()}")
    staged = assessment.staged
    if staged is not None:
        if staged.diff.empty:
            lines.append(f"staged {staged.path}: identical to the live configuration")
        else:
            lines.extend(f"staged diff {line}" for line in staged.lines)
            if staged.change is not None:
                lines.extend(_change_lines("if installed now", staged.change, now))
            if staged.after_postmap is not None:
                lines.extend(_change_lines("after postmap", staged.after_postmap, now))
    return lines


def _change_lines(label: str, change: Change, now: float) -> list[str]:
    data = change_dict(change, now)
    names = [n for n in data["parameters"] if n != "*"] + data["services"]
    names += [t for t in data["tables"] if t]
    what = ", ".join(names or [Path(f).name for f in data["files"]])
    if "*" in data["parameters"]:
        what += " (which parameters changed is unknown on this basis)"
    head = f"{label}: {what} edited {_when(change.at, now)}"
    stale = data["stale_processes"]
    lines = [head]
    if stale:
        lines.append(
            f"  stale: {len(stale)} process(es): "
            + ", ".join(stale[:8])
            + (" ..." if len(stale) > 8 else "")
        )
    if data["needs"]:
        for need in data["needs_detail"]:
            lines.append(f"  NEEDS {need['action']} ({need['target']}): {need['why']}")
    elif change.status == "live" and change.live_at is not None and change.live_at <= change.at:
        lines.append(
            "  live at once: no running process has the old version (the next one "
            "started reads the new file)"
        )
    elif change.status == "live":
        lines.append(f"  live at {_when(change.live_at, now)}")
    else:
        lines.append(
            f"  goes live by itself: predicted {_when(data['predicted_live_at'], now)}"
            + _idle_hint(change)
        )
        sentence = describe(change.live_interval, lambda at: _when(at, now))
        if sentence:
            lines.append(f"  with the current traffic: {sentence}")
    lines.extend(f"  note: {text}" for text in data["advisories"][:3])
    return lines


def _idle_hint(change: Change) -> str:
    idles = sorted({float(i.max_idle) for i in change.impacts if i.max_idle})
    if not idles:
        return ""
    return f" (each stale process exits max_idle = {idles[0]:g} s after its last session)"


def render_text(assessment: Assessment, now: float, thresholds: AgeThresholds | None = None) -> str:
    """The human report."""
    result = verdict(assessment, now, thresholds)
    out = [f"pfwatch check {assessment.config_dir}: {result.status.name} - {result.summary}"]
    out.extend(f"  basis: {line}" for line in assessment.basis_detail)
    if assessment.release:
        out.append(f"  release: {releases.describe(assessment.release)}")
    details = detail_lines(assessment, now)
    if details:
        out.append("")
        out.extend(details)
    return "\n".join(out) + "\n"
