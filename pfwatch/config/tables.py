"""Lookup-table sources and file lists, parsed into entries keyed by lookup key.

Dispatches to the table grammars in :mod:`pfwatch.grammars` by source format:

- ``postmap``: hash, btree, lmdb, cdb, dbm, sdbm, texthash (``key value``)
- ``alias``: the same types when read by postalias (``name: value``; alias_maps)
- ``cf``: mysql/pgsql/sqlite/ldap/memcache/mongodb map definitions (``name = value``)
- ``regexp``, ``pcre``, ``cidr``: ordered rules keyed by pattern
- ``file-list``: a ``/file/name`` in a match list (mynetworks, relay_domains, ...): one
  pattern per word, physical lines, lines starting with ``#`` skipped, words separated by
  blanks and commas (src/util/match_list.c match_list_parse; no continuation lines there).

Inputs: decoded text or a path. Outputs: :class:`TableContents` (entries in file order and
positioned :class:`~pfwatch.errors.ConfigSyntaxError` problems; Postfix warns and skips
such lines, so a table with problems is still usable). Errors: ``load_table`` raises
:class:`~pfwatch.errors.SourceUnavailable` for a missing or unreadable file; parsing never
raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pfwatch.config.maincf import read_text
from pfwatch.errors import ConfigSyntaxError
from pfwatch.grammars.table_cidr import parse_cidr_table
from pfwatch.grammars.table_regexp import parse_regexp_table
from pfwatch.grammars.table_source import ParsedTable, TableEntry, parse_table_source
from pfwatch.knowledge.tables import SourceKind

SOURCE_KINDS: tuple[SourceKind, ...] = (
    "postmap",
    "alias",
    "cf",
    "regexp",
    "pcre",
    "cidr",
    "file-list",
)

#: Separators of a match list (src/util/match_list.c: mystrtok with " ,\t\r\n").
FILE_LIST_SEPARATORS = " ,\t\r\n"


@dataclass(frozen=True, slots=True)
class TableContents:
    """A parsed table source or file list: ``key -> value`` in file order, plus problems."""

    path: str
    kind: SourceKind
    entries: Mapping[str, str]
    lines: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[ConfigSyntaxError, ...] = ()


def _file_list(text: str) -> ParsedTable:
    entries: dict[str, TableEntry] = {}
    for number, physical in enumerate(text.split("\n"), start=1):
        if physical.startswith("#"):
            continue
        word = ""
        start = 0
        for column, char in enumerate(physical + " ", start=1):
            if char in FILE_LIST_SEPARATORS:
                if word and word not in entries:
                    entries[word] = TableEntry(word, "", number, start)
                word = ""
            else:
                if not word:
                    start = column
                word += char
    return ParsedTable(tuple(entries.values()), ())


def parse_table(text: str, kind: SourceKind, path: str) -> TableContents:
    """Parse ``text`` (the content of ``path``) as a table source of ``kind``."""
    match kind:
        case "regexp" | "pcre":
            parsed = parse_regexp_table(text, kind)
        case "cidr":
            parsed = parse_cidr_table(text)
        case "file-list":
            parsed = _file_list(text)
        case "postmap" | "alias" | "cf":
            parsed = parse_table_source(text, kind)
    return TableContents(
        path=path,
        kind=kind,
        entries={entry.key: entry.value for entry in parsed.entries},
        lines={entry.key: entry.line for entry in parsed.entries},
        problems=tuple(
            ConfigSyntaxError(path, problem.line, problem.column, problem.message)
            for problem in parsed.problems
        ),
    )


def load_table(path: str, kind: SourceKind) -> TableContents:
    """Read and parse the table source at ``path`` (``SourceUnavailable`` if unreadable)."""
    return parse_table(read_text(path), kind, path)
