"""``pfwatch lab``: a throwaway real Postfix on loopback to rehearse a change on.

``--from DIR`` copies (and neutralises, see :mod:`pfwatch.lab.config`) an existing
configuration; ``--script FILE`` replays a rehearsal (command format in :mod:`pfwatch.lab.session`
and docs/change-window.md) and prints a report; without it, commands are read from the
terminal while the engine's predictions and confirmations are printed as they happen.
Exit codes: 0 every expectation held, 1 one failed, 3 the lab could not run (no Postfix:
the message says how to install it; a bad script line: file and line).
Inputs: flags, the script. Outputs: the report on stdout, the exit status.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click

from pfwatch.errors import ExitStatus, PfwatchError
from pfwatch.events import Finding, machine_times
from pfwatch.instance.local import PostfixStartError, PostfixUnavailable
from pfwatch.lab.script import LabScriptError, line_problem, render_report, validate_script
from pfwatch.lab.session import INSTALL_HINT, Lab, lab_instance

SHOWN = (
    "change_detected",
    "change_prediction_updated",
    "change_live",
    "process_exited",
    "postfix_reloaded",
    "config_error",
)


def describe(finding: Finding, origin: float) -> str:
    """One line for a finding shown live in the interactive lab."""
    data = finding.data
    at = f"+{finding.at - origin:6.1f}s"
    if finding.name == "process_exited":
        return (
            f"{at} exited  {data.get('daemon')}[{data.get('pid')}] ({data.get('reason')}, "
            f"{finding.basis})"
        )
    if finding.name == "change_live":
        return (
            f"{at} LIVE    {data.get('change_id')} ({data.get('basis')}: {data.get('explanation')})"
        )
    if finding.name in ("change_detected", "change_prediction_updated"):
        pred = data.get("predicted_live_at")
        when = f"+{pred - origin:.1f}s" if isinstance(pred, int | float) else "unknown"
        needs = ", ".join(data.get("needs") or []) or "none"
        stale = data.get("stale_count", len(data.get("stale_processes") or []))
        return (
            f"{at} {finding.name.split('_')[1]:<11}{data.get('change_id')}: {stale} stale, "
            f"predicted live {when}, needs {needs}"
        )
    return f"{at} {finding.name} {json.dumps(dict(data), default=str)[:100]}"


def interactive(lab: Lab) -> None:
    """Read commands from stdin; a background thread keeps the engine current."""
    lock = threading.Lock()
    stop = threading.Event()
    origin = lab.report.started_at

    def show(finding: Finding) -> None:
        if finding.name in SHOWN:
            click.echo(describe(finding, origin))

    lab.on_finding = show

    def keep_polling() -> None:
        while not stop.wait(0.5):
            with lock:
                lab.poll()

    poller = threading.Thread(target=keep_polling, name="pfwatch-lab-poll", daemon=True)
    poller.start()
    click.echo(
        "lab ready; commands: edit, write, append, postmap, reload, restart, send, "
        "session open|close, sleep, wait, expect ... (see docs); 'quit' to stop"
    )
    try:
        for number, line in enumerate(sys.stdin, start=1):
            if line.strip() in ("quit", "exit"):
                break
            problem = line_problem(line)
            if problem is not None:
                click.echo(f"error: {problem}")
                continue
            with lock:
                try:
                    step = lab.run_line(line, number)
                except (LabScriptError, ValueError) as exc:
                    click.echo(f"error: {exc}")
                    continue
            if step is not None:
                click.echo(f"{'ok' if step.ok else 'FAIL'}: {step.command}  {step.outcome}")
    finally:
        stop.set()
        poller.join()


@click.command("lab")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Configuration directory to copy into the lab (secrets and external lookups neutralised).",
)
@click.option(
    "--script",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replay this rehearsal script and print a report.",
)
@click.option(
    "--max-idle",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="max_idle of the lab, in seconds (short so edits go live quickly).",
)
@click.option(
    "--keep-max-idle", is_flag=True, help="Keep the copied configuration's own max_idle instead."
)
@click.option(
    "--work-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Create the lab's private directory here (default: the system temp dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def lab(
    *,
    source: Path | None,
    work_dir: Path | None,
    script: Path | None,
    max_idle: int,
    keep_max_idle: bool,
    as_json: bool,
) -> int:
    """Rehearse a change on a throwaway real Postfix on 127.0.0.1, watched by the engine."""
    try:
        if script is not None:
            validate_script(script)
        with lab_instance(source, None if keep_max_idle else max_idle, work_dir) as (
            instance,
            notes,
        ):
            session = Lab(instance, notes)
            try:
                if script is not None:
                    report = session.run_script(script)
                else:
                    for note in notes:
                        click.echo(f"lab: {note}")
                    interactive(session)
                    report = session.finish()
            finally:
                session.close()
    except PostfixUnavailable as exc:
        click.echo(f"pfwatch lab: {exc}\n{INSTALL_HINT}", err=True)
        return int(ExitStatus.UNKNOWN)
    except PostfixStartError as exc:
        click.echo(f"pfwatch lab: the lab Postfix did not start: {exc}", err=True)
        return int(ExitStatus.UNKNOWN)
    except (PfwatchError, OSError) as exc:
        click.echo(f"pfwatch lab: {exc}", err=True)
        return int(ExitStatus.UNKNOWN)
    if as_json:
        click.echo(json.dumps(machine_times(report.as_dict()), indent=2, default=str))
    else:
        click.echo(render_report(report), nl=False)
    return int(ExitStatus.OK if report.ok else ExitStatus.PENDING)
