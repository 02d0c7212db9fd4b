"""Lookup-table types as data: which are change-checked, which load once, which are live.

Every row cites Postfix 3.7.11 (postfix-facts.md section 3). Inputs: a table type name
(``hash``, ``pcre``, ...) or a table reference (``proxy:hash:/etc/postfix/x``, a plain
``/etc/postfix/vdomains`` file list). Outputs: :class:`TableType` rows via
:func:`table_type`, :func:`split_ref`. Errors: none (unknown types are "load_once",
the conservative answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TableBehaviour = Literal["indexed", "lmdb", "load_once", "live_query", "no_file"]
SourceKind = Literal["postmap", "alias", "cf", "regexp", "pcre", "cidr", "file-list"]
"""How a table's source file is read: postmap/postalias input, a ``.cf`` file of
``name = value`` lines, a regexp/pcre/cidr pattern file, or a match-list file."""


@dataclass(frozen=True, slots=True)
class TableType:
    """How running processes see edits of one table type, and what it reads from disk.

    ``source_kind`` is None when the type has no file (or its name is a main.cf
    parameter prefix); ``compiled_suffixes`` name the files postmap writes next to the
    source. ``dictionary`` is False for the ``/file/name`` pseudo type of match lists.
    """

    name: str
    behaviour: TableBehaviour
    needs_postmap: bool
    source: str
    note: str = ""
    source_kind: SourceKind | None = None
    compiled_suffixes: tuple[str, ...] = ()
    dictionary: bool = True


_DB = "src/util/dict_db.c:788-804; src/util/dict.c:583-609"
_CF_NOTE = "data is queried live; the .cf file is parsed once at open"
_ROWS = (
    TableType("hash", "indexed", True, _DB, source_kind="postmap", compiled_suffixes=(".db",)),
    TableType("btree", "indexed", True, _DB, source_kind="postmap", compiled_suffixes=(".db",)),
    TableType(
        "dbm",
        "indexed",
        True,
        "src/util/dict_dbm.c:470-475",
        source_kind="postmap",
        compiled_suffixes=(".dir", ".pag"),
    ),
    TableType(
        "sdbm",
        "indexed",
        True,
        "src/util/dict_sdbm.c:449-452",
        source_kind="postmap",
        compiled_suffixes=(".dir", ".pag"),
    ),
    TableType(
        "cdb",
        "indexed",
        True,
        "src/util/dict_cdb.c:211-214,305-322",
        source_kind="postmap",
        compiled_suffixes=(".cdb",),
    ),
    TableType(
        "lmdb",
        "lmdb",
        True,
        "src/util/dict_lmdb.c:654-675; src/util/slmdb.c:394-399,568",
        "rebuilt in place; readers see new contents at once, no restart, no log line",
        source_kind="postmap",
        compiled_suffixes=(".lmdb",),
    ),
    TableType("regexp", "load_once", False, "src/util/dict_regexp.c:791-814", source_kind="regexp"),
    TableType("pcre", "load_once", False, "src/util/dict_pcre.c:1041-1071", source_kind="pcre"),
    TableType("cidr", "load_once", False, "src/util/dict_cidr.c:292-314", source_kind="cidr"),
    TableType(
        "texthash", "load_once", False, "src/util/dict_thash.c:104-122", source_kind="postmap"
    ),
    TableType(
        "file",
        "load_once",
        False,
        "src/util/match_list.c:159-176",
        "a /file/name in a match list is read once at process start",
        source_kind="file-list",
        dictionary=False,
    ),
    TableType("mysql", "live_query", False, "src/global/dict_mysql.c:822", _CF_NOTE, "cf"),
    TableType("pgsql", "live_query", False, "src/global/dict_pgsql.c:800", _CF_NOTE, "cf"),
    TableType("ldap", "live_query", False, "src/global/dict_ldap.c:1647", _CF_NOTE, "cf"),
    TableType("sqlite", "live_query", False, "src/global/dict_sqlite.c:327", _CF_NOTE, "cf"),
    TableType(
        "memcache", "live_query", False, "src/global/dict_memcache.c:522,596", _CF_NOTE, "cf"
    ),
    TableType("inline", "no_file", False, "src/util/dict_alloc.c:155-156; src/util/dict_inline.c"),
    TableType("static", "no_file", False, "src/util/dict_alloc.c:155-156; src/util/dict_static.c"),
)
TABLE_TYPES: dict[str, TableType] = {row.name: row for row in _ROWS}
#: Dictionary types without a file of their own, registered in dict_open_info[]
#: (src/util/dict_open.c) and mail_dict.c (src/global/mail_dict.c): nothing to watch.
FILELESS_TYPES = frozenset(
    {"fail", "environ", "internal", "randmap", "unix", "nis", "nisplus", "tcp", "socketmap"}
)
#: Every dictionary type pfwatch recognises in a ``type:name`` word.
DICTIONARY_TYPES: dict[str, TableType] = {
    **{n: TableType(n, "no_file", False, "src/util/dict_open.c") for n in FILELESS_TYPES},
    # Postfix 3.9+: a .cf file read by cfg_parser_alloc() in dict_mongodb_open()
    "mongodb": TableType(
        "mongodb", "live_query", False, "src/global/dict_mongodb.c", _CF_NOTE, "cf"
    ),
    **{n: r for n, r in TABLE_TYPES.items() if r.dictionary},
}
#: Types that wrap other tables (src/global/dict_proxy.c, src/util/dict_union.c,
#: src/util/dict_pipe.c).
COMPILED_SUFFIXES = tuple(sorted({s for row in _ROWS for s in row.compiled_suffixes}))
"""Every suffix of a file postmap writes (``.db``, ``.cdb``, ``.dir``, ``.lmdb``, ``.pag``)."""

WRAPPER_TYPES = frozenset({"proxy", "unionmap", "pipemap"})

PROXY_NOTE = (
    "proxy: tables are opened by proxymap, which checks indexed tables only when a new "
    "client connects (src/proxymap/proxymap.c:786-794); clients never check"
)


def split_ref(ref: str) -> tuple[bool, str, str]:
    """``(via_proxy, type, name)`` of a table reference; a bare path is a file list."""
    via_proxy = False
    rest = ref.lstrip("!")
    if rest.startswith(("proxy:", "proxywrite:")):
        via_proxy = True
        rest = rest.split(":", 1)[1]
    if rest.startswith("/") or ":" not in rest:
        return via_proxy, "file", rest
    kind, name = rest.split(":", 1)
    return via_proxy, kind, name


def table_type(kind: str) -> TableType:
    """The row for a table type; unknown types load once (never assume a live reload)."""
    found = TABLE_TYPES.get(kind)
    if found is not None:
        return found
    return TableType(kind, "load_once", False, "unknown type: assumed read once at open")
