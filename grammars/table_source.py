"""Source files of indexed lookup tables, alias files and SQL/LDAP ``.cf`` map definitions.

Three line grammars over Postfix's logical lines (:mod:`pfwatch.grammars._tokens`):

- ``postmap``: ``key whitespace value``, the source format of ``hash:``, ``btree:``,
  ``lmdb:``, ``cdb:``, ``dbm:``, ``sdbm:`` and ``texthash:`` (src/postmap/postmap.c,
  postmap(): split at the first blank, trim both sides, warn and skip a line with no key or
  no value; keys are folded to lower case unless ``postmap -f``). The first entry for a key
  wins, later ones are "duplicate entry" warnings (src/util/dict_db.c, dict_db_update with
  DICT_FLAG_DUP_WARN; dict_thash.c the same).
- ``alias``: ``name: value`` as postalias(1) reads /etc/aliases (src/postalias/postalias.c:
  "need name:value pair"); a double-quoted name may contain ``:``.
- ``cf``: ``name = value`` as cfg_parser(3) reads mysql/pgsql/ldap/sqlite/memcache map
  definitions (src/util/dict.c dict_load_fp + split_nameval); the last value wins.

Inputs: decoded file text. Outputs: :class:`ParsedTable` (entries with positions, problems
with positions). Errors: none; every problem becomes a positioned :class:`Problem`, as
Postfix warns and skips the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pyparsing as pp

from pfwatch.grammars._tokens import POSTFIX_SPACE, LogicalLine, logical_lines
from pfwatch.grammars._tokens import Warning_ as Problem

__all__ = [
    "ParsedTable",
    "Problem",
    "SourceFormat",
    "TableEntry",
    "parse_table_source",
]

SourceFormat = Literal["postmap", "alias", "cf"]


@dataclass(frozen=True, slots=True)
class TableEntry:
    """One entry: lookup key, value (result text), and where the logical line starts."""

    key: str
    value: str
    line: int
    column: int = 1


@dataclass(frozen=True, slots=True)
class ParsedTable:
    """Entries in file order (only those Postfix would store) and the problems found."""

    entries: tuple[TableEntry, ...]
    problems: tuple[Problem, ...]


_BLANK = pp.Regex(f"[{POSTFIX_SPACE}]+").set_name("blank")
_WORD = pp.Regex(f"[^{POSTFIX_SPACE}]+").set_name("key")
_REST = pp.Regex(r".+", flags=0x10).set_name("value")  # re.DOTALL

#: ``key whitespace value`` (postmap.c: strcspn(key, CHARS_SPACE)).
POSTMAP_LINE = (_WORD("key") + pp.Opt(pp.Suppress(_BLANK) + pp.Opt(_REST("value")))).set_name(
    "postmap line"
)
POSTMAP_LINE.leave_whitespace()
POSTMAP_LINE.parse_with_tabs()  # offsets and values must keep their tabs

_QUOTED = pp.Regex(r'"(?:[^"\\]|\\.)*"').set_name("quoted name")
_ALIAS_NAME = (_QUOTED | pp.Regex(r'[^:"]+')).set_name("alias name")
#: ``name: value`` (postalias.c, tok822 scan up to the first ``:`` outside quotes).
ALIAS_LINE = (
    pp.Combine(pp.OneOrMore(_ALIAS_NAME))("key") + pp.Literal(":") + pp.Opt(_REST("value"))
).set_name("alias line")
ALIAS_LINE.leave_whitespace()
ALIAS_LINE.parse_with_tabs()  # offsets and values must keep their tabs

#: ``name = value`` (split_nameval: name up to blank or ``=``).
CF_LINE = (
    pp.Regex(f"[^={POSTFIX_SPACE}]+")("key")
    + pp.Opt(_BLANK)
    + pp.Literal("=")
    + pp.Opt(_REST("value"))
).set_name("cf line")
CF_LINE.leave_whitespace()
CF_LINE.parse_with_tabs()  # offsets and values must keep their tabs


# The same languages as POSTMAP_LINE and ALIAS_LINE in one ``re`` match each: every line
# they accept goes through here (tables of a million lines); a line they refuse falls
# through to the grammar, which positions the problem. tests/grammars/test_table_fast_path
# checks that both paths agree on generated lines.
_POSTMAP_FAST = re.compile(f"([^{POSTFIX_SPACE}]+)(?:[{POSTFIX_SPACE}]+(.*))?", re.DOTALL)
_ALIAS_FAST = re.compile(r'((?:"(?:[^"\\]|\\.)*"|[^:"])+):(.*)', re.DOTALL)


def _field(result: pp.ParseResults, name: str) -> str:
    """A named result as text, empty when the optional part was absent."""
    return str(result[name]) if name in result else ""


def _strip(text: str) -> str:
    return text.strip(POSTFIX_SPACE)


def _postmap(logical: LogicalLine, fold: bool) -> tuple[str, str] | Problem:
    fast = _POSTMAP_FAST.fullmatch(logical.text)
    if fast is not None:
        key, value = fast.group(1), _strip(fast.group(2) or "")
    else:
        try:
            result = POSTMAP_LINE.parse_string(logical.text, parse_all=True)
        except pp.ParseBaseException as exc:
            line, column = logical.position(exc.loc)
            return Problem(line, column, "expected format: key whitespace value")
        key = str(result["key"])
        value = _strip(_field(result, "value"))
    if not value:
        line, column = logical.position(len(logical.text))
        return Problem(line, column, "expected format: key whitespace value")
    return (key.lower() if fold else key), value


def _alias(logical: LogicalLine, fold: bool) -> tuple[str, str] | Problem:
    fast = _ALIAS_FAST.fullmatch(logical.text)
    if fast is not None:
        key, value = _strip(fast.group(1)), _strip(fast.group(2))
    else:
        try:
            result = ALIAS_LINE.parse_string(logical.text, parse_all=True)
        except pp.ParseBaseException as exc:
            line, column = logical.position(exc.loc)
            return Problem(line, column, "need name:value pair")
        key = _strip(str(result["key"]))
        value = _strip(_field(result, "value"))
    if not key or not value:
        line, column = logical.position(0 if not key else len(logical.text))
        return Problem(line, column, "need name:value pair")
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    # postalias re-externalises the tokenised value: runs of blanks become one space.
    return (key.lower() if fold else key), " ".join(value.split())


def _cf(logical: LogicalLine, fold: bool) -> tuple[str, str] | Problem:
    del fold  # cfg_parser names are case-sensitive
    try:
        result = CF_LINE.parse_string(logical.text, parse_all=True)
    except pp.ParseBaseException as exc:
        line, column = logical.position(exc.loc)
        return Problem(line, column, "missing '=' after attribute name")
    return str(result["key"]), _strip(_field(result, "value"))


_LINE_PARSERS = {"postmap": _postmap, "alias": _alias, "cf": _cf}


def parse_table_source(
    text: str, source_format: SourceFormat = "postmap", *, fold_case: bool = True
) -> ParsedTable:
    """Parse a table source the way postmap/postalias/cfg_parser would read it.

    ``fold_case`` lower-cases keys as postmap/postalias do by default (``-f`` turns it
    off). For ``cf`` the last value of a name wins; otherwise the first entry wins and
    each later duplicate is a problem.
    """
    lines, warnings = logical_lines(text)
    problems: list[Problem] = list(warnings)
    entries: dict[str, TableEntry] = {}
    parse_line = _LINE_PARSERS[source_format]
    for logical in lines:
        parsed = parse_line(logical, fold_case)
        if isinstance(parsed, Problem):
            problems.append(parsed)
            continue
        key, value = parsed
        if source_format == "postmap" and key.endswith(":"):
            problems.append(
                Problem(
                    logical.line,
                    1,
                    'record is in "key: value" format; is this an alias file?',
                )
            )
        if key in entries and source_format != "cf":
            problems.append(Problem(logical.line, 1, f'duplicate entry: "{key}"'))
            continue
        entries.pop(key, None)
        entries[key] = TableEntry(key, value, logical.line)
    problems.sort(key=lambda problem: (problem.line, problem.column))
    return ParsedTable(tuple(entries.values()), tuple(problems))
