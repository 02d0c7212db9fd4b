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


@dataclass(frozen=True, slots=True)
class TableType:
    """How running processes see edits of one table type."""

    name: str
    behaviour: TableBehaviour
    needs_postmap: bool
    source: str
    note: str = ""


_ROWS = (
    TableType("hash", "indexed", True, "src/util/dict_db.c:788-792; src/util/dict.c:583-609"),
    TableType("btree", "indexed", True, "src/util/dict_db.c:788-792; src/util/dict.c:583-609"),
    TableType("dbm", "indexed", True, "src/util/dict_dbm.c:470-475"),
    TableType("sdbm", "indexed", True, "src/util/dict_sdbm.c:449-452"),
    TableType("cdb", "indexed", True, "src/util/dict_cdb.c:211-214,305-322"),
    TableType(
        "lmdb",
        "lmdb",
        True,
        "src/util/dict_lmdb.c:654-656; src/util/slmdb.c:394-399,568",
        "rebuilt in place; readers see new contents at once, no restart, no log line",
    ),
    TableType("regexp", "load_once", False, "src/util/dict_regexp.c:791-814"),
    TableType("pcre", "load_once", False, "src/util/dict_pcre.c:1041-1071"),
    TableType("cidr", "load_once", False, "src/util/dict_cidr.c:292-314"),
    TableType("texthash", "load_once", False, "src/util/dict_thash.c:104-122"),
    TableType(
        "file",
        "load_once",
        False,
        "src/util/match_list.c:159-176",
        "a /file/name in a match list is read once at process start",
    ),
    TableType(
        "mysql",
        "live_query",
        False,
        "src/global/dict_mysql.c:822",
        "data is queried live; the .cf file is parsed once at open",
    ),
    TableType(
        "pgsql",
        "live_query",
        False,
        "src/global/dict_pgsql.c:800",
        "data is queried live; the .cf file is parsed once at open",
    ),
    TableType(
        "ldap",
        "live_query",
        False,
        "src/global/dict_ldap.c:1647",
        "data is queried live; the .cf file is parsed once at open",
    ),
    TableType(
        "sqlite",
        "live_query",
        False,
        "src/global/dict_sqlite.c:327",
        "data is queried live; the .cf file is parsed once at open",
    ),
    TableType(
        "memcache",
        "live_query",
        False,
        "src/global/dict_memcache.c:522,596",
        "data is queried live; the .cf file is parsed once at open",
    ),
    TableType("inline", "no_file", False, "src/util/dict_alloc.c:155-156"),
    TableType("static", "no_file", False, "src/util/dict_alloc.c:155-156"),
)
TABLE_TYPES: dict[str, TableType] = {row.name: row for row in _ROWS}

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
