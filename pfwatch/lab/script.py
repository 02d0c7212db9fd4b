"""The rehearsal script format of ``pfwatch lab`` and its report.

Script lines are checked before any Postfix is started (:func:`validate_script`), so a
typo costs nothing. The report (:class:`LabReport`) lists each step with its outcome and
every change with its first prediction and its confirmation; :func:`render_report` is
the human form, :meth:`LabReport.as_dict` the JSON one. The verbs are documented in
:mod:`pfwatch.lab.session` and docs/change-window.md. Inputs: a script path, steps and changes.
Outputs: text and dicts. Errors: :class:`LabScriptError` (file and line).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfwatch.errors import PfwatchError
from pfwatch.events import Finding


class LabScriptError(PfwatchError):
    """A lab command that cannot be run (unknown verb, bad arguments)."""

    def __init__(self, where: str, line: int, message: str) -> None:
        self.where, self.line, self.message = where, line, message
        super().__init__(f"{where}:{line}: {message}")


@dataclass
class Step:
    """One command of the rehearsal and what came of it."""

    line: int
    command: str
    at: float
    ok: bool = True
    outcome: str = ""


@dataclass
class LabReport:
    """The rehearsal: steps, changes (predicted and confirmed), expectations."""

    started_at: float
    notes: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "started_at": self.started_at,
            "notes": self.notes,
            "steps": [vars(s) for s in self.steps],
            "changes": self.changes,
        }


VERBS: dict[str, tuple[int, int]] = {
    "edit": (2, 99),
    "write": (1, 99),
    "append": (2, 99),
    "postmap": (1, 1),
    "reload": (0, 0),
    "restart": (0, 0),
    "send": (1, 99),
    "session": (1, 1),
    "sleep": (1, 1),
    "wait": (0, 1),
    "expect": (1, 99),
}
"""Verb -> (least, most) arguments."""
EXPECTATIONS = ("live", "needs", "pending", "banner", "delivered")


def line_problem(line: str) -> str | None:
    """Why one command line is not valid (None when it is, or is blank/comment)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        return str(exc)
    if not words:
        return None
    verb, args = words[0], words[1:]
    if verb not in VERBS:
        return f"unknown command: {' '.join(words)}"
    least, most = VERBS[verb]
    if not least <= len(args) <= most:
        return f"wrong number of arguments: {line.strip()}"
    if verb == "expect" and args[0] not in EXPECTATIONS:
        return f"unknown expectation: {' '.join(args)}"
    if verb == "session" and args[0] not in ("open", "close"):
        return "session open | session close"
    if verb in ("sleep", "wait") and args:
        try:
            float(args[0])
        except ValueError:
            return f"not a number: {args[0]}"
    return None


def validate_script(path: Path) -> None:
    """Check every line of a script before a lab is started (``LabScriptError``)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise LabScriptError(str(path), 0, exc.strerror or str(exc)) from None
    for number, line in enumerate(text.splitlines(), start=1):
        problem = line_problem(line)
        if problem is not None:
            raise LabScriptError(str(path), number, problem)


def stamp(at: float | None, origin: float) -> str:
    """``+12.3s`` relative to ``origin`` (``-`` when unknown)."""
    return "-" if at is None else f"+{at - origin:.1f}s"


def render_report(report: LabReport) -> str:
    """The human report of a rehearsal."""
    t0 = report.started_at
    out = ["pfwatch lab rehearsal: " + ("all expectations held" if report.ok else "FAILED")]
    out.extend(f"  lab: {note}" for note in report.notes)
    out.append("steps:")
    for step in report.steps:
        mark = "ok " if step.ok else "FAIL"
        out.append(
            f"  {mark} {stamp(step.at, t0):>8}  {step.command}"
            + (f"  -> {step.outcome}" if step.outcome else "")
        )
    out.append("changes:")
    for change in report.changes:
        if change["superseded_by"] and change["live_at"] is None:
            out.append(
                f"  {change['what']}: edited {stamp(change['edited_at'], t0)}, "
                f"superseded by {change['superseded_by']} (its postmap)"
            )
            continue
        live = change["live_at"]
        lag = f"{live - change['edited_at']:.1f} s after the edit" if live else "not live"
        out.append(
            f"  {change['what']}: edited {stamp(change['edited_at'], t0)}, first predicted "
            f"live {stamp(change['first_predicted_live_at'], t0)}, confirmed live "
            f"{stamp(live, t0)} ({lag}; {change['live_basis'] or '-'}; "
            f"{change['made_live_by'] or '-'}); needs: {', '.join(change['needs']) or 'none'}"
        )
    return "\n".join(out) + "\n"
