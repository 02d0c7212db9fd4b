"""``pfwatch wait``: block until every pending edit is confirmed live.

For change scripts: ``edit; postmap; pfwatch wait`` instead of an unconditional reload.
It assesses like ``check`` (same flags, same engine), then follows the log, polls /proc
and re-reads the configuration until no change is pending. A live countdown is drawn on
a terminal (rich), plain lines otherwise. Exit codes match ``check``: 0 every edit is
live, 1 timeout while edits were still on their way, 2 an edit needs postmap, reload or
stop/start (at once, or at the timeout with ``--wait-for-actions``), 3 cannot tell.
Inputs: flags and settings as ``check``. Outputs: progress on stdout, the exit status.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from pfwatch.changewindow.check_report import change_dict
from pfwatch.changewindow.instances import MultiSession
from pfwatch.cli.live_options import LivePostfix, live_postfix_options
from pfwatch.core.changes import needs_actions
from pfwatch.core.state import Change
from pfwatch.errors import ExitStatus, PfwatchError, describe, exit_status_of


def _what(change: Change, label: str = "") -> str:
    names = [n for n in change.parameters if n != "*"] + list(change.services)
    names += [t.ref for t in change.tables]
    text = ", ".join(names) or ", ".join(Path(f).name for f in change.files)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"[{label}] {text}" if label else text


def _line(change: Change, now: float, label: str = "") -> str:
    data = change_dict(change, now)
    stale = data["stale_processes"]
    if data["needs"]:
        tail = "NEEDS " + " + ".join(data["needs"])
    elif data["seconds_to_live"] is not None:
        tail = f"predicted live in {data['seconds_to_live']:.0f} s"
    else:
        tail = "predicted live: unknown (busy or no log)"
    who = f"; stale: {', '.join(stale[:6])}" if stale else ""
    return f"{_what(change, label)}: {tail}{who}"


def _table(session: MultiSession, now: float, deadline: float) -> Table:
    table = Table(title=f"pfwatch wait: timeout in {max(0.0, deadline - now):.0f} s", expand=False)
    for column in ("edit", "stale processes", "live", "needs"):
        table.add_column(column)
    for label, change in session.pending():
        data = change_dict(change, now)
        seconds = data["seconds_to_live"]
        table.add_row(
            _what(change, label),
            ", ".join(data["stale_processes"][:6]) or "-",
            f"in {seconds:.0f} s" if seconds is not None else "unknown",
            " + ".join(data["needs"]) or "-",
        )
    return table


def wait_loop(
    session: MultiSession,
    *,
    timeout: float,
    interval: float,
    wait_for_actions: bool,
    out: TextIO,
    tty: bool,
) -> ExitStatus:
    """Poll until nothing is pending; return the exit status (see the module doc)."""
    start = time.time()
    deadline = start + timeout
    console = Console(file=out) if tty else None
    live = Live(console=console, auto_refresh=False, transient=True) if console else None
    last_lines: list[str] = []
    waited_for: set[tuple[str, str]] = set()
    status = ExitStatus.OK
    if live is not None:
        live.start()
    try:
        while True:
            now = time.time()
            for label, change in session.changes():
                key = (label, change.change_id)
                if change.status == "live" and key in waited_for:
                    waited_for.discard(key)
                    stamp = time.strftime("%H:%M:%SZ", time.gmtime(change.live_at or now))
                    message = (
                        f"live: {_what(change, label)} at {stamp} "
                        f"({change.live_basis}; {change.made_live_by})"
                    )
                    if console is not None:
                        console.print(message)
                    else:
                        print(message, file=out, flush=True)
            pending = session.pending()
            waited_for.update((label, c.change_id) for label, c in pending)
            blocked = [c for _, c in pending if needs_actions(c.needs)]
            if not pending:
                status = ExitStatus.OK
                break
            if blocked and not wait_for_actions:
                status = ExitStatus.ACTION_NEEDED
                break
            if now >= deadline:
                status = ExitStatus.ACTION_NEEDED if blocked else ExitStatus.PENDING
                break
            if live is not None:
                live.update(_table(session, now, deadline), refresh=True)
            else:
                lines = [_line(c, now, label) for label, c in pending]
                if [line.split(": predicted")[0] for line in lines] != [
                    line.split(": predicted")[0] for line in last_lines
                ]:
                    stamp = time.strftime("%H:%M:%SZ", time.gmtime(now))
                    for text in lines:
                        print(f"{stamp} waiting: {text}", file=out, flush=True)
                    last_lines = lines
            time.sleep(max(0.05, min(interval, deadline - now)))
            session.poll()
    finally:
        if live is not None:
            live.stop()
    now = time.time()
    final = session.pending()
    if status == ExitStatus.OK:
        print(f"pfwatch wait: every edit is live ({now - start:.1f} s)", file=out)
    else:
        why = "timed out" if now >= deadline else "an edit needs an action"
        print(f"pfwatch wait: {why}; still pending:", file=out)
        for label, change in final:
            print(f"  {_line(change, now, label)}", file=out)
            for need in change_dict(change, now)["needs_detail"]:
                print(f"    run: {need['action']} ({need['target']}): {need['why']}", file=out)
    return status


@click.command("wait")
@live_postfix_options(
    maillog="Postfix log to follow (default: main.cf's maillog_file, else the detected "
    "system maillog).",
    journal="Follow journald instead.",
    state_dir="State directory of 'pfwatch watch' (start from its engine state).",
)
@click.option(
    "-t",
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Give up after this many seconds.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between polls of the log, /proc and the configuration.",
)
@click.option(
    "--wait-for-actions",
    is_flag=True,
    help="When an edit needs postmap/reload/"
    "restart, keep waiting for someone to run it (until the timeout) instead of "
    "exiting 2 at once.",
)
def wait(*, live: LivePostfix, timeout: float, interval: float, wait_for_actions: bool) -> int:
    """Wait until every pending edit is live; exit 0 live, 1 timeout, 2 action needed.

    Confirmation comes from observed process exits (/proc, the log), not only from the
    prediction. Exit 3 when it cannot tell (the reason is printed).
    """
    session: MultiSession | None = None
    try:
        request = live.request()
        session = MultiSession.start(request, live.instances(request))
        return int(
            wait_loop(
                session,
                timeout=timeout,
                interval=interval,
                wait_for_actions=wait_for_actions,
                out=sys.stdout,
                tty=sys.stdout.isatty(),
            )
        )
    except (PfwatchError, OSError) as exc:
        status = exit_status_of(exc)
        click.echo(f"pfwatch wait: {status.name} - {describe(exc)}", err=True)
        return int(status)
    finally:
        if session is not None:
            session.close()
