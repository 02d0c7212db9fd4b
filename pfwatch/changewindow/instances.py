"""``check`` and ``wait`` on a host with several Postfix instances.

Each instance (:mod:`pfwatch.config.instances`: the primary and those its main.cf lists in
``multi_instance_directories``, or the ``--config-dir`` directories given) is assessed on
its own, as a host with one instance is: its configuration, its processes (the children
of its own master), its state, and the log lines with its program prefix (a
:class:`~pfwatch.config.instances.Router` sends each line to one instance). The reports
stand side by side, each labelled with the instance; the status is the worst of them.

Inputs: the :class:`~pfwatch.changewindow.precheck.CheckRequest` of the primary and the
instances. Outputs: :class:`InstanceAssessment` per instance, the ``check --json``
document with an ``instances`` list, the plugin report (worst status, each line prefixed
with its instance), the text report, :class:`MultiSession` for ``wait``. Errors: those of
:func:`~pfwatch.changewindow.precheck.assess`, raised for the first instance that fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pfwatch.changewindow.check_report import (
    AgeThresholds,
    detail_lines,
    render_text,
    report_dict,
    verdict,
)
from pfwatch.changewindow.livewatch import LiveSession
from pfwatch.changewindow.precheck import Assessment, CheckRequest, assess
from pfwatch.config.instances import InstanceSpec, Router
from pfwatch.core.state import Change
from pfwatch.errors import ExitStatus
from pfwatch.events import Finding
from pfwatch.sinks.plugin_output import Perfdatum, PluginReport

_WORST = (ExitStatus.OK, ExitStatus.PENDING, ExitStatus.UNKNOWN, ExitStatus.ACTION_NEEDED)
"""Statuses from best to worst: an edit that needs an action outweighs "cannot tell"."""


def worst(statuses: Sequence[ExitStatus]) -> ExitStatus:
    """The worst of ``statuses`` (OK for none)."""
    return max(statuses, key=_WORST.index, default=ExitStatus.OK)


def requests_for(request: CheckRequest, instances: Sequence[InstanceSpec]) -> list[CheckRequest]:
    """One request per instance: its configuration directory and the log lines its
    program prefixes mark. With the state directory of ``watch``, each instance starts from
    its own engine state there. A staged file belongs to the primary (name the other
    instance's directory alone to stage a file for it)."""
    router = Router(instances)
    return [
        dataclasses.replace(
            request,
            config_dir=spec.config_dir,
            instance_names=router.names_of(number),
            state_instance=None if spec.primary else spec.name,
            staged=request.staged if spec.primary else None,
        )
        for number, spec in enumerate(instances)
    ]


@dataclass
class InstanceAssessment:
    """One instance and what ``check`` found there."""

    instance: InstanceSpec
    assessment: Assessment


def assess_all(
    request: CheckRequest, instances: Sequence[InstanceSpec]
) -> list[InstanceAssessment]:
    """:func:`~pfwatch.changewindow.precheck.assess` for every instance, in order."""
    return [
        InstanceAssessment(spec, assess(one))
        for spec, one in zip(instances, requests_for(request, instances), strict=True)
    ]


def status_of(found: Sequence[InstanceAssessment], now: float, thresholds: AgeThresholds) -> int:
    """The exit status of ``check``: the worst instance's."""
    return int(worst([verdict(f.assessment, now, thresholds).status for f in found]))


def _summary(found: Sequence[InstanceAssessment], now: float, thresholds: AgeThresholds) -> str:
    return "; ".join(
        f"{f.instance.name}: {verdict(f.assessment, now, thresholds).summary}" for f in found
    )


def report_document(
    found: Sequence[InstanceAssessment], now: float, thresholds: AgeThresholds
) -> dict[str, Any]:
    """``check --json`` of a multi-instance host: the worst status, and each instance's
    own document (as a host with one instance gets it) under ``instances``."""
    status = ExitStatus(status_of(found, now, thresholds))
    return {
        "status": status.name.lower(),
        "exit_code": int(status),
        "summary": _summary(found, now, thresholds),
        "checked_at": now,
        "instances": [
            {
                "instance": f.instance.name,
                "primary": f.instance.primary,
                "syslog_names": sorted(f.instance.syslog_names),
                **report_dict(f.assessment, now, thresholds),
            }
            for f in found
        ],
    }


def plugin_report(
    found: Sequence[InstanceAssessment], now: float, thresholds: AgeThresholds
) -> PluginReport:
    """The plugin line of the worst instance's status; perfdata summed over instances
    (ages: the oldest); each detail line starts with its instance."""
    results = [(f, verdict(f.assessment, now, thresholds)) for f in found]
    status = ExitStatus(status_of(found, now, thresholds))

    def total(name: str) -> int:
        return sum(int(getattr(result, name)) for _, result in results)

    def oldest(name: str) -> float | None:
        values = [getattr(r, name) for _, r in results if getattr(r, name) is not None]
        return max(values) if values else None

    def lint(severity: str) -> int:
        return sum(1 for f, _ in results for x in f.assessment.lint if x.severity == severity)

    soonest = [r.seconds_to_live for _, r in results if r.seconds_to_live is not None]
    perfdata = (
        Perfdatum("pending", total("pending"), warn="0"),
        Perfdatum("needs_action", total("needs_action"), crit="0"),
        Perfdatum("stale_processes", total("stale")),
        Perfdatum("seconds_to_live", max(soonest) if soonest else None, "s"),
        Perfdatum(
            "oldest_pending_age",
            oldest("oldest_age"),
            "s",
            thresholds.warning,
            thresholds.critical,
        ),
        Perfdatum("lint_errors", lint("error"), crit="0"),
        Perfdatum("lint_warnings", lint("warning")),
    )
    details = tuple(
        f"[{f.instance.name}] {line}"
        for f, _ in results
        for line in detail_lines(f.assessment, now)
    )
    return PluginReport(status, _summary(found, now, thresholds), perfdata, details)


def render_all(found: Sequence[InstanceAssessment], now: float, thresholds: AgeThresholds) -> str:
    """The human report: each instance's, headed by its name."""
    parts = [
        f"[instance {f.instance.name}] " + render_text(f.assessment, now, thresholds) for f in found
    ]
    return "\n".join(parts)


class MultiSession:
    """``wait`` on one or several instances: a :class:`LiveSession` each, polled together.

    Each session has a label: the instance's name, or "" on a host with one instance (whose
    output then reads as it always did)."""

    def __init__(self, sessions: Sequence[tuple[str, LiveSession]]) -> None:
        self.sessions = list(sessions)

    @classmethod
    def start(cls, request: CheckRequest, instances: Sequence[InstanceSpec]) -> MultiSession:
        """Sessions for ``instances``; with none, one unlabelled session for ``request``."""
        if not instances:
            return cls([("", LiveSession.start(request))])
        started: list[tuple[str, LiveSession]] = []
        try:
            for spec, one in zip(instances, requests_for(request, instances), strict=True):
                started.append((spec.name, LiveSession.start(one)))
        except BaseException:
            for _, session in started:
                session.close()
            raise
        return cls(started)

    def changes(self) -> list[tuple[str, Change]]:
        """Every change the sessions know, with its label."""
        return [
            (label, change)
            for label, session in self.sessions
            for change in session.state.changes.values()
        ]

    def pending(self) -> list[tuple[str, Change]]:
        """Changes not live yet in any instance, oldest first."""
        found = [(label, c) for label, session in self.sessions for c in session.pending()]
        return sorted(found, key=lambda pair: pair[1].at)

    def poll(self) -> list[Finding]:
        return [f for _, session in self.sessions for f in session.poll()]

    def close(self) -> None:
        for _, session in self.sessions:
            session.close()
