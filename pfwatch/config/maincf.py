"""Read main.cf into :class:`~pfwatch.config.model.MainCf`, the way Postfix reads it.

Wraps the grammar in :mod:`pfwatch.grammars.main_cf`. Postfix treats the file as opaque
bytes; we decode UTF-8 with ``surrogateescape`` so every byte survives a round trip
(:func:`decode` / :func:`encode`). Inputs: file text or a path. Outputs: ``MainCf`` with
parameters in file order (last assignment wins) and the duplicates Postfix warns about.
Errors: :class:`~pfwatch.errors.ConfigSyntaxError` (file:line:column) for lines Postfix
rejects; :class:`~pfwatch.errors.SourceUnavailable` for a missing or unreadable file.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pfwatch.grammars.main_cf as grammar
from pfwatch.config.expand import ExpansionError
from pfwatch.config.model import Duplicate, MainCf, Parameter
from pfwatch.errors import ConfigSyntaxError, SourceUnavailable
from pfwatch.grammars._tokens import logical_lines

ENCODING = "utf-8"
ERRORS = "surrogateescape"


def decode(data: bytes) -> str:
    """Bytes of a Postfix file to text; undecodable bytes become lone surrogates."""
    return data.decode(ENCODING, ERRORS)


def encode(text: str) -> bytes:
    """Inverse of :func:`decode`: the exact original bytes."""
    return text.encode(ENCODING, ERRORS)


def read_text(path: str) -> str:
    """Read a configuration file as text, or raise ``SourceUnavailable``."""
    try:
        return decode(Path(path).read_bytes())
    except FileNotFoundError:
        raise SourceUnavailable(path, "no such file") from None
    except IsADirectoryError:
        raise SourceUnavailable(path, "is a directory") from None
    except OSError as exc:
        raise SourceUnavailable(path, exc.strerror or str(exc)) from None


#: :func:`pfwatch.grammars.main_cf.parse_assignment` remembered per logical line (text,
#: line numbers): a watcher re-parses main.cf after every edit and most lines did not
#: change. Lines that fail are not remembered (the error is raised again).
_parse_assignment = functools.lru_cache(maxsize=4096)(grammar.parse_assignment)


def _parse(text: str) -> list[grammar.Assignment]:
    """:func:`pfwatch.grammars.main_cf.parse`'s assignments, through the memo above."""
    lines, _warnings = logical_lines(text)
    return [_parse_assignment(logical) for logical in lines]


def parse_main_cf(text: str, path: str = "main.cf") -> MainCf:
    """Parse main.cf text; duplicates keep the last value (at the place of the first, as
    in Postfix's table) and are listed."""
    try:
        assignments = _parse(text)
    except grammar.MainCfSyntaxError as exc:
        raise ConfigSyntaxError(path, exc.line, exc.column, exc.message) from None
    parameters: dict[str, Parameter] = {}
    first_line: dict[str, int] = {}
    duplicates: list[Duplicate] = []
    for item in assignments:
        if item.name in parameters:
            duplicates.append(Duplicate(item.name, first_line[item.name], item.line))
        else:
            first_line[item.name] = item.line
        parameters[item.name] = Parameter(item.name, item.value, path, item.line)
    return MainCf(path=path, parameters=parameters, duplicates=tuple(duplicates))


def locate_error(text: str, error: ExpansionError) -> ExpansionError:
    """``error`` with line and column in the file (its column is first an offset in the
    parameter's value); unchanged when the parameter is not found in ``text``."""
    if error.parameter is None or error.line <= 0:
        return error
    lines, _warnings = logical_lines(text)
    for logical in lines:
        if logical.line != error.line:
            continue
        try:
            assignment = grammar.parse_assignment(logical)
        except grammar.MainCfSyntaxError:
            return error
        if assignment.name != error.parameter:
            return error
        line, column = logical.position(assignment.value_offset + error.offset)
        return ExpansionError(
            error.path,
            line,
            column,
            error.message,
            parameter=error.parameter,
            offset=error.offset,
        )
    return error


def load_main_cf(path: str) -> MainCf:
    """Read and parse the main.cf at ``path``."""
    return parse_main_cf(read_text(path), path)
