"""``pfwatch check``: is anything pending, and what would a staged file do if installed now?

One-shot, with the same engine as ``watch`` (see :mod:`pfwatch.changewindow.precheck`).
Exit codes are the monitoring-plugin ones, so it runs as a Nagios/Icinga/Sensu check:
0 nothing pending, 1 pending edits that go live by themselves, 2 an edit that needs
postmap/reload/restart or a broken configuration, 3 cannot tell (the reason is
printed). ``--plugin`` prints the
one-line summary with performance data (stdout only, even for errors); ``--json`` the
full report. Inputs: flags, ``PFWATCH_*`` settings, the configuration, /proc, the log.
Outputs: the report on stdout, the exit status as the return value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pfwatch.changewindow.check_report import (
    AgeThresholds,
    plugin_report,
    render_text,
    report_dict,
    verdict,
)
from pfwatch.changewindow.precheck import assess
from pfwatch.cli.live_options import LivePostfix, live_postfix_options
from pfwatch.errors import (
    ConfigSyntaxError,
    ExitStatus,
    PfwatchError,
    UsageError,
    describe,
    exit_status_of,
)
from pfwatch.events import machine_times
from pfwatch.sinks.plugin_output import PluginReport, parse_range, render_plugin_output

if TYPE_CHECKING:
    from pfwatch.changewindow.precheck import CheckRequest
    from pfwatch.config.instances import InstanceSpec


def _failure(exc: BaseException) -> tuple[ExitStatus, str]:
    reason = describe(exc)
    if isinstance(exc, ConfigSyntaxError):
        reason = f"configuration error: {reason}"
    return exit_status_of(exc), reason


def _report_failure(exc: BaseException, *, as_json: bool, plugin: bool) -> int:
    status, reason = _failure(exc)
    if plugin:
        click.echo(render_plugin_output(PluginReport(status, reason)), nl=False)
    elif as_json:
        click.echo(
            json.dumps(
                {"status": status.name.lower(), "exit_code": int(status), "summary": reason},
                indent=2,
            )
        )
    else:
        click.echo(f"pfwatch check: {status.name} - {reason}", err=True)
    return int(status)


def _check_instances(
    request: CheckRequest,
    instances: tuple[InstanceSpec, ...],
    thresholds: AgeThresholds,
    *,
    as_json: bool,
    plugin: bool,
) -> int:
    """``check`` of a host with several instances: each assessed, the worst status."""
    from pfwatch.changewindow import instances as multi  # noqa: PLC0415 - multi-instance only

    found = multi.assess_all(request, instances)
    now = request.now
    if plugin:
        report = multi.plugin_report(found, now, thresholds)
        click.echo(render_plugin_output(report), nl=False)
    elif as_json:
        doc = multi.report_document(found, now, thresholds)
        click.echo(json.dumps(machine_times(doc), indent=2, default=str))
    else:
        click.echo(multi.render_all(found, now, thresholds), nl=False)
    return multi.status_of(found, now, thresholds)


@click.command("check")
@live_postfix_options(
    maillog="Postfix log to read process activity from (repeatable; default: main.cf's "
    "maillog_file when set).",
    journal="Read the log from journald instead.",
    state_dir="State directory of 'pfwatch watch' (use its recorded snapshots and engine state).",
)
@click.option(
    "--staged",
    type=click.Path(path_type=Path),
    metavar="FILE_OR_DIR",
    help="Candidate main.cf/master.cf/table (or a directory of them, named like "
    "the files they replace): what would installing it now mean?",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option(
    "--plugin",
    is_flag=True,
    help="Monitoring-plugin output: one status line "
    "with performance data, then details (Nagios/Icinga/Sensu).",
)
@click.option("--no-log", is_flag=True, help="Do not read any log (only /proc and files).")
@click.option(
    "-w",
    "--warning",
    default="",
    metavar="RANGE",
    help="Age range (seconds) of "
    "the oldest pending edit that makes it WARNING (e.g. 300); younger self-applying "
    "edits are then OK.",
)
@click.option(
    "-c",
    "--critical",
    default="",
    metavar="RANGE",
    help="Age range (seconds) of the oldest pending edit that makes it CRITICAL (e.g. 900).",
)
def check(
    *,
    warning: str,
    critical: str,
    live: LivePostfix,
    staged: Path | None,
    as_json: bool,
    plugin: bool,
    no_log: bool,
) -> int:
    """Report pending configuration edits, stale tables and lint; exit 0/1/2/3.

    0: nothing pending. 1: edits pending that go live by themselves (the time is
    predicted). 2: an edit needs postmap, postfix reload or stop/start, or the
    configuration is broken. 3: cannot tell (the reason is printed).
    """
    try:
        for flag, text in (("--warning", warning), ("--critical", critical)):
            if text:
                try:
                    parse_range(text)
                except ValueError as exc:
                    raise UsageError(f"{flag} {text!r}: {exc}") from None
        thresholds = AgeThresholds(warning, critical)
        request = live.request(staged=staged, no_log=no_log)
        instances = live.instances(request)
        if instances:
            return _check_instances(request, instances, thresholds, as_json=as_json, plugin=plugin)
        assessment = assess(request)
    except (PfwatchError, OSError) as exc:
        return _report_failure(exc, as_json=as_json, plugin=plugin)
    now = request.now
    if plugin:
        click.echo(render_plugin_output(plugin_report(assessment, now, thresholds)), nl=False)
    elif as_json:
        click.echo(
            json.dumps(
                machine_times(report_dict(assessment, now, thresholds)), indent=2, default=str
            )
        )
    else:
        click.echo(render_text(assessment, now, thresholds), nl=False)
    return int(verdict(assessment, now, thresholds).status)
