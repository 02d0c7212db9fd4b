"""``pfwatch watch``: the sidecar service (see :mod:`pfwatch.service.loop`).

Inputs: flags, ``PFWATCH_*`` environment variables and an optional TOML file, resolved by
:func:`pfwatch.settings.load_settings`. Outputs: the JSON event stream on stdout (or
``--events-file``), /metrics /status /healthz on ``--listen``, the state database under
``--state-dir``. Exit status 0 after SIGTERM/SIGINT; 3 (UNKNOWN) for unusable settings,
a ``--web-config`` file that is missing, malformed or exposes a key (checked before
anything starts), a listen address that cannot be bound, or a state directory held by
another watcher.
Errors: :class:`pfwatch.errors.UsageError`, reported by :mod:`pfwatch.cli.exit_status`.

Exactly once: on stdout an event may be written twice if pfwatch dies between writing
it and recording the write (same ``event_id``); with ``--events-file`` a restart reads
the file's tail first, so every event is in the file exactly once.
"""

from __future__ import annotations

from pathlib import Path

import click

from pfwatch.service.loop import WatchOptions, run_watch
from pfwatch.settings import load_settings
from pfwatch.sinks.webconfig import load_web_config


@click.command("watch")
@click.option(
    "--config-dir",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Postfix configuration directory [env PFWATCH_CONFIG_DIR; default /etc/postfix]. "
    "Repeat it to follow several instances (the primary first); a primary whose main.cf "
    "sets multi_instance_directories brings its instances along.",
)
@click.option(
    "--maillog",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Log file to follow [env PFWATCH_MAILLOG; default: the usual locations].",
)
@click.option(
    "--journal",
    is_flag=True,
    default=None,
    help="Read the systemd journal instead of a log file [env PFWATCH_JOURNAL].",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where state is kept [env PFWATCH_STATE_DIR; default /var/lib/pfwatch].",
)
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Address of /metrics /status /healthz [env PFWATCH_LISTEN; default 127.0.0.1:29125].",
)
@click.option(
    "--web-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="TLS and basic auth for the endpoint, in the Prometheus exporter toolkit's format.",
)
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML settings file [env PFWATCH_SETTINGS; default /etc/pfwatch/pfwatch.toml].",
)
@click.option(
    "--debounce",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Quiet time that ends a burst of file edits [env PFWATCH_DEBOUNCE; default 0.3].",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default=None,
    help="Event rendering: JSON lines, or console on a terminal [env PFWATCH_LOG_FORMAT].",
)
@click.option("--no-proc", is_flag=True, help="Do not poll /proc for Postfix processes.")
@click.option(
    "--events-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append events to FILE instead of stdout, exactly once across crashes.",
)
def watch(  # noqa: PLR0917 - one parameter per documented flag
    config_dir: tuple[Path, ...],
    maillog: Path | None,
    journal: bool | None,
    state_dir: Path | None,
    listen: str | None,
    web_config: Path | None,
    settings_file: Path | None,
    debounce: float | None,
    log_format: str | None,
    no_proc: bool,
    events_file: Path | None,
) -> int:
    """Watch the configuration, the log and the processes; report when edits go live.

    Writes one JSON event per line (change_detected, change_live, process_exited, ...;
    see docs/events.md) and serves /metrics, /status and /healthz. Stop with SIGTERM.
    """
    if maillog is not None and journal:
        raise click.UsageError("choose --maillog FILE or --journal, not both")
    settings = load_settings(
        {
            "config_dir": config_dir[0] if config_dir else None,
            "maillog": maillog,
            "journal": True if journal else None,
            "state_dir": state_dir,
            "listen": listen,
            "debounce": debounce,
            "log_format": log_format,
        },
        settings_file=settings_file,
    )
    web = load_web_config(web_config) if web_config is not None else None
    options = WatchOptions(
        settings=settings,
        proc=not no_proc,
        events_file=events_file,
        web_config=web,
        instance_dirs=config_dir[1:],
    )
    return run_watch(options)
