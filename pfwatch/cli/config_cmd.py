"""``pfwatch config``: main.cf and master.cf as Postfix reads them, like ``postconf``.

Inputs: ``--config-dir`` (default ``$MAIL_CONFIG`` or /etc/postfix), ``-x`` (expand
``$name``), ``--master`` (services instead of parameters), ``--json``, ``--postfix-version``
(the release whose shipped facts serve when no ``postconf`` answers). Outputs: the text
``postconf -c DIR -n [-x]`` or ``postconf -c DIR -M [-x]`` prints, byte for byte (bytes
that are not UTF-8 pass through unchanged), or a JSON document. As with postconf, a
directory named by ``--config-dir`` or ``$MAIL_CONFIG`` shows up as ``config_directory``.
Exit status: 0; 2 when a file does not parse or a value cannot be expanded (message with
file:line:column); 3 when main.cf (or, with ``--master``, master.cf) cannot be read.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, BinaryIO

import click

from pfwatch.config.defaults import ParameterKnowledge, parameter_knowledge
from pfwatch.config.expand import ExpansionError
from pfwatch.config.maincf import encode, locate_error, read_text
from pfwatch.config.model import MainCf, MasterCf
from pfwatch.config.postconf import build_table, show_master, show_nondefault
from pfwatch.config.snapshot import build_snapshot, parsed_files
from pfwatch.errors import ExitStatus
from pfwatch.knowledge import releases

DEFAULT_CONFIG_DIR = "/etc/postfix"


def resolve_config_dir(option: str | None) -> tuple[str, str | None]:
    """The directory to read, and the ``config_directory`` value postconf would inject."""
    if option is not None:
        return option, option
    env = os.environ.get("MAIL_CONFIG")
    if env:
        return env, env
    return DEFAULT_CONFIG_DIR, None


def _knowledge(configured: str | None) -> ParameterKnowledge:
    """postconf's own knowledge when one answers (more trusted than ``--postfix-version``);
    else the shipped facts of the configured release. A release pfwatch has no facts of
    its own for, or cannot parse, is said once on standard error."""
    knowledge = parameter_knowledge()
    if knowledge.postconf is not None or configured is None:
        return knowledge
    choice = releases.choose(configured)
    if choice.note:
        click.echo(f"pfwatch: {choice.note}", err=True)
    return parameter_knowledge(None, release=configured)


def _write(lines: list[str]) -> None:
    """Write the lines as bytes, so bytes that are not UTF-8 come out unchanged."""
    stream: BinaryIO = sys.stdout.buffer
    stream.write(b"".join(encode(line) + b"\n" for line in lines))
    stream.flush()


@click.command("config")
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Postfix configuration directory [default: $MAIL_CONFIG or /etc/postfix].",
)
@click.option("-x", "expand", is_flag=True, help="Expand $name in values (postconf -x).")
@click.option("--master", is_flag=True, help="Show master.cf services (postconf -M).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
@click.option(
    "--postfix-version",
    envvar=releases.ENV_VAR,
    default=None,
    help="Postfix release of this configuration, used when no postconf answers "
    f"[env: {releases.ENV_VAR}].",
)
def config(
    config_dir: str | None,
    expand: bool,
    master: bool,
    as_json: bool,
    postfix_version: str | None,
) -> int:
    """Show main.cf parameters (like postconf -n) or master.cf services (like postconf -M)."""
    directory, injected = resolve_config_dir(config_dir)
    knowledge = _knowledge(postfix_version)
    # Read as every front reads it; the error reported is postconf's: -M reads master.cf
    # first, -n main.cf first (src/postconf/postconf.c:1020-1031, 1074-1091), and -n only
    # warns about a missing master.cf.
    parsed = parsed_files(
        build_snapshot(directory, knowledge=knowledge),
        master_first=master,
        master_optional=not master,
    )
    main_cf, master_cf = parsed.main, parsed.master
    try:
        return _show(
            main_cf,
            master_cf,
            directory=directory,
            injected=injected,
            expand=expand,
            master=master,
            as_json=as_json,
            knowledge=knowledge,
        )
    except ExpansionError as exc:
        if exc.path != main_cf.path:
            raise
        raise locate_error(read_text(main_cf.path), exc) from None


def _show(
    main_cf: MainCf,
    master_cf: MasterCf | None,
    *,
    directory: str,
    injected: str | None,
    expand: bool,
    master: bool,
    as_json: bool,
    knowledge: ParameterKnowledge,
) -> int:
    table = build_table(main_cf, master_cf, knowledge, injected)
    if master:
        assert master_cf is not None
        lines = show_master(master_cf, table, expand)
        if as_json:
            document: dict[str, Any] = {
                "config_directory": directory,
                "postfix_version": knowledge.postfix_version,
                "services": [
                    {
                        "service": s.name,
                        "type": s.type,
                        "private": s.private,
                        "unpriv": s.unpriv,
                        "chroot": s.chroot,
                        "wakeup": s.wakeup,
                        "maxproc": s.maxproc,
                        "command": s.command,
                        "args": list(s.args),
                        "overrides": dict(s.overrides),
                        "line": s.line,
                        "postconf": line,
                    }
                    for s, line in zip(master_cf.services, lines, strict=True)
                ],
            }
            _write([json.dumps(document, indent=2, ensure_ascii=True)])
        else:
            _write(lines)
        return int(ExitStatus.OK)
    lines = show_nondefault(table, expand)
    if as_json:
        expander = table.expander()
        document = {
            "config_directory": directory,
            "postfix_version": knowledge.postfix_version,
            "expanded": expand,
            "parameters": [
                {
                    "name": name,
                    "value": expander.expand(name) if expand else table.explicit[name],
                    "line": table.lines.get(name),
                }
                for name in table.shown()
            ],
        }
        _write([json.dumps(document, indent=2, ensure_ascii=True)])
    else:
        _write(lines)
    return int(ExitStatus.OK)
