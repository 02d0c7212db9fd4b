"""Read master.cf into :class:`~pfwatch.config.model.MasterCf`, as ``postconf -M`` reads it.

Wraps :mod:`pfwatch.grammars.master_cf`. ``MasterService.args`` holds the daemon
arguments after the command, normalised as postconf normalises them (``-o`` and its value
as two words, ``{}`` removed, ``-o { a = b }`` as ``a=b``); ``overrides`` holds the ``-o
name=value`` settings (last one wins). Inputs: file text or a path. Outputs:
``MasterCf``. Errors: :class:`~pfwatch.errors.ConfigSyntaxError` (file:line:column)
where postconf is fatal; :class:`~pfwatch.errors.SourceUnavailable` for a missing file.
"""

from __future__ import annotations

import functools

import pfwatch.grammars.master_cf as grammar
from pfwatch.config.maincf import read_text
from pfwatch.config.model import MasterCf, MasterService
from pfwatch.errors import ConfigSyntaxError
from pfwatch.grammars._tokens import LogicalLine, logical_lines


@functools.lru_cache(maxsize=4096)
def _entry(logical: LogicalLine) -> grammar.Entry:
    """One entry's parse, remembered per logical line (text and line numbers): a watcher
    re-parses master.cf after every edit and most lines did not change. Warnings are not
    kept (nor used here); lines that fail are not remembered."""
    return grammar.parse_entry(logical, [])


def _parse(text: str) -> list[grammar.Entry]:
    """:func:`pfwatch.grammars.master_cf.parse`'s entries, through :func:`_entry`."""
    lines, _warnings = logical_lines(text)
    return [_entry(logical) for logical in lines]


def parse_master_cf(text: str, path: str = "master.cf") -> MasterCf:
    """Parse master.cf text into services in file order."""
    try:
        entries = _parse(text)
    except grammar.MasterCfSyntaxError as exc:
        raise ConfigSyntaxError(path, exc.line, exc.column, exc.message) from None
    services = []
    for entry in entries:
        name, type_, private, unpriv, chroot, wakeup, maxproc, command = entry.fields
        services.append(
            MasterService(
                name=name,
                type=type_,
                private=private,
                unpriv=unpriv,
                chroot=chroot,
                wakeup=wakeup,
                maxproc=maxproc,
                command=command,
                args=entry.args,
                overrides=dict(entry.overrides),
                path=path,
                line=entry.line,
            )
        )
    return MasterCf(path=path, services=tuple(services))


def load_master_cf(path: str) -> MasterCf:
    """Read and parse the master.cf at ``path``."""
    return parse_master_cf(read_text(path), path)
