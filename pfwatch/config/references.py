"""Reference discovery: every lookup table and file list Postfix will read, and its freshness.

Scans the expanded value of every main.cf parameter (explicit ones and Postfix defaults,
e.g. ``alias_maps``) and of every master.cf ``-o`` override for ``type:name`` words
(``proxy:``, ``unionmap:{...}`` and ``pipemap:{...}`` are unwrapped; ``inline:{...}``,
``static:`` and network types have no file), plus ``/file/name`` words in match-list
parameters (``mynetworks = /etc/postfix/nets``). Words are split the way Postfix splits
table lists: blanks and commas, ``{...}`` kept whole (src/util/mystrtok.c mystrtokq).

Relative names: daemons ``chdir(var_queue_dir)`` before they open tables (the pre_init
call in src/master/single_server.c and the other skeletons), so a relative ``hash:virtual``
is resolved against ``queue_directory``. SQL/LDAP names are files only when they start with
``/`` or ``.`` (src/global/cfg_parser.c cfg_parser_alloc); other names are main.cf
parameter prefixes (``ldap:ldapsource`` reads ``ldapsource_*``).

Inputs: parsed main.cf and master.cf and an :class:`~pfwatch.config.expand.Expander`.
Outputs: :class:`TableRef` tuples (sorted by ref) and :class:`Freshness` from ``stat``.
Errors: none; expansion errors leave that parameter out (main.cf's own parse reports
them), unreadable files are a freshness state.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from pfwatch.config.expand import Expander
from pfwatch.config.model import MainCf, MasterService
from pfwatch.config.redact import is_secret_parameter
from pfwatch.errors import ConfigSyntaxError
from pfwatch.knowledge.tables import DICTIONARY_TYPES, WRAPPER_TYPES, SourceKind

#: Parameters whose tables Postfix does not read as configuration, with the reason.
NOT_READ: Mapping[str, str] = {
    "proxy_read_maps": "approval list only (src/proxymap/proxymap.c:346-351)",
    "proxy_write_maps": "approval list only (src/proxymap/proxymap.c:346-351)",
    "address_verify_map": "cache written by verify(8)",
    "postscreen_cache_map": "cache written by postscreen(8)",
    "smtp_tls_session_cache_database": "cache written by tlsmgr(8)",
    "smtpd_tls_session_cache_database": "cache written by tlsmgr(8)",
    "lmtp_tls_session_cache_database": "cache written by tlsmgr(8)",
    "smtp_sasl_auth_cache_name": "cache written by smtp(8)",
    "lmtp_sasl_auth_cache_name": "cache written by lmtp(8)",
}
#: Name endings of parameters that hold service endpoints (``unix:/path``), not tables.
ENDPOINT_SUFFIXES = ("_milters",)
#: Restriction words whose next word is an endpoint (src/smtpd/smtpd_check.c).
ENDPOINT_ARGUMENT_OF = frozenset({"check_policy_service"})

#: Match-list parameters where ``/file/name`` reads patterns from a file
#: (src/util/match_list.c match_list_parse; postconf(5) per parameter).
MATCH_LIST_PARAMETERS = frozenset(
    {
        "mydestination",
        "mynetworks",
        "relay_domains",
        "virtual_alias_domains",
        "virtual_mailbox_domains",
        "permit_mx_backup_networks",
        "fast_flush_domains",
        "debug_peer_list",
        "smtpd_client_event_limit_exceptions",
        "smtpd_authorized_verp_clients",
        "smtpd_authorized_xclient_hosts",
        "smtpd_authorized_xforward_hosts",
        "qmqpd_authorized_clients",
        "authorized_flush_users",
        "authorized_mailq_users",
        "authorized_submit_users",
        "authorized_verp_clients",
        "smtp_connection_cache_destinations",
        "lmtp_connection_cache_destinations",
        "smtpd_sasl_exceptions_networks",
        "smtp_sasl_mechanism_filter",
        "lmtp_sasl_mechanism_filter",
        "smtpd_sasl_mechanism_filter",
        "local_header_rewrite_clients",
        "postscreen_access_list",
    }
)
LIST_SEPARATORS = " ,\t\r\n"

FreshnessState = Literal[
    "fresh", "stale", "not-compiled", "source-missing", "missing", "present", "unreadable", "n/a"
]


@dataclass(frozen=True, slots=True)
class TableRef:
    """One table or file list, with everything that references it."""

    ref: str
    type: str
    name: str
    source: str | None
    compiled: tuple[str, ...]
    kind: SourceKind | None
    parameters: tuple[str, ...]
    services: tuple[str, ...] = ()
    via: tuple[str, ...] = ()
    secret: bool = False
    relative: bool = False


@dataclass(frozen=True, slots=True)
class Freshness:
    """Compiled file vs. source: ``stale`` means the source is newer (postmap not run)."""

    state: FreshnessState
    source_mtime: float | None = None
    compiled_mtime: float | None = None
    detail: str = ""

    @property
    def fresh(self) -> bool | None:
        """True/False for file-backed tables, None when there is no file to compare."""
        if self.state == "n/a":
            return None
        return self.state in ("fresh", "present")


def split_list(value: str) -> Iterator[str]:
    """Words of a table list: blank/comma separated, ``{...}`` kept whole (mystrtokq)."""
    word: list[str] = []
    depth = 0
    for char in value:
        if depth == 0 and char in LIST_SEPARATORS:
            if word:
                yield "".join(word)
                word = []
            continue
        if char == "{":
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
        word.append(char)
    if word:
        yield "".join(word)


def _unbrace(text: str) -> str:
    text = text.strip(LIST_SEPARATORS)
    if text.startswith("{") and text.endswith("}"):
        return text[1:-1]
    return text


@dataclass(frozen=True, slots=True)
class _Leaf:
    type: str
    name: str
    via: tuple[str, ...]


def _leaves(word: str, via: tuple[str, ...] = ()) -> Iterator[_Leaf]:
    """The file-level tables inside one ``type:name`` word (proxy/unionmap unwrapped)."""
    kind, colon, name = word.partition(":")
    if not colon or (kind not in DICTIONARY_TYPES and kind not in WRAPPER_TYPES):
        return
    if kind == "proxy":
        yield from _leaves(name, (*via, kind))
    elif kind in WRAPPER_TYPES:
        for inner in split_list(_unbrace(name)):
            yield from _leaves(inner, (*via, kind))
    else:
        yield _Leaf(kind, name, via)


def _tables_in(value: str, match_list: bool) -> Iterator[tuple[str, _Leaf | None]]:
    """``(word, leaf)`` for table words, ``(path, None)`` for ``/file/name`` words."""
    skip_next = False
    for word in split_list(value):
        if skip_next:
            skip_next = False
            continue
        if word.lower() in ENDPOINT_ARGUMENT_OF:
            skip_next = True
            continue
        bare = word.lstrip("!")
        if match_list and bare.startswith("/"):
            yield bare, None
            continue
        for leaf in _leaves(bare):
            yield bare, leaf


@functools.lru_cache(maxsize=4096)
def _table_words(value: str, match_list: bool) -> tuple[tuple[str, _Leaf | None], ...]:
    """:func:`_tables_in` as a tuple, remembered: most values are the same snapshot after
    snapshot, and most hold no table at all (no ``:``, no ``/`` in a match list)."""
    if ":" not in value and not (match_list and "/" in value):
        return ()
    return tuple(_tables_in(value, match_list))


def _resolve(name: str, base: str) -> tuple[str, bool]:
    path = PurePosixPath(name)
    if path.is_absolute():
        return os.path.normpath(path), False
    return os.path.normpath(PurePosixPath(base) / path), True


@dataclass
class _Collector:
    queue_directory: str
    found: dict[str, TableRef]

    def add(self, word: str, leaf: _Leaf | None, parameter: str, service: str | None) -> None:
        if leaf is None:
            path, relative = _resolve(word, self.queue_directory)
            ref = TableRef(word, "file-list", word, path, (), "file-list", (), relative=relative)
        else:
            ref = self._table(leaf)
        key = ref.ref
        old = self.found.get(key, ref)
        parameters = old.parameters if parameter in old.parameters else (*old.parameters, parameter)
        services = old.services
        if service is not None and service not in services:
            services = (*services, service)
        kind = old.kind
        if kind == "postmap" and parameter in ("alias_maps", "alias_database"):
            kind = "alias"
        self.found[key] = TableRef(
            ref=old.ref,
            type=old.type,
            name=old.name,
            source=old.source,
            compiled=old.compiled,
            kind=kind,
            parameters=parameters,
            services=services,
            via=tuple(dict.fromkeys((*old.via, *ref.via))),
            secret=old.secret or is_secret_parameter(parameter),
            relative=old.relative,
        )

    def _table(self, leaf: _Leaf) -> TableRef:
        spec = DICTIONARY_TYPES[leaf.type]
        ref = f"{leaf.type}:{leaf.name}"
        file_backed = spec.source_kind is not None and not leaf.name.startswith("{")
        if spec.source_kind == "cf" and not leaf.name.startswith(("/", ".")):
            file_backed = False  # cfg_parser.c: a main.cf parameter prefix, not a file
        if not file_backed:
            return TableRef(ref, leaf.type, leaf.name, None, (), None, (), via=leaf.via)
        path, relative = _resolve(leaf.name, self.queue_directory)
        compiled = tuple(path + suffix for suffix in spec.compiled_suffixes)
        return TableRef(
            ref,
            leaf.type,
            leaf.name,
            path,
            compiled,
            spec.source_kind,
            (),
            via=leaf.via,
            relative=relative,
        )


def _used_user_parameters(
    main: MainCf, services: Iterable[MasterService], expander: Expander, known: frozenset[str]
) -> frozenset[str]:
    """User-defined main.cf names Postfix reads: restriction classes and ``$name`` targets.

    Postfix reads a name it does not know only through ``$name`` in another value or as a
    restriction class (smtpd_restriction_classes, src/smtpd/smtpd_check.c); any other
    user-defined name is an "unused parameter" (src/postconf/postconf_unused.c).
    """
    user = [name for name in main.parameters if name not in known]
    if not user:
        return frozenset()
    classes = set(split_list(_expanded(expander, "smtpd_restriction_classes") or ""))
    texts = [p.value for p in main.parameters.values()]
    texts.extend(value for service in services for value in service.overrides.values())
    joined = "\n".join(texts)
    return frozenset(
        name
        for name in user
        if name in classes or re.search(rf"\$(?:\{{|\()?{re.escape(name)}\b", joined)
    )


def _expanded(expander: Expander, name: str) -> str | None:
    try:
        return expander.expand(name)
    except ConfigSyntaxError:
        return None


def discover(
    main: MainCf,
    services: Iterable[MasterService],
    expander: Expander,
    parameter_names: tuple[str, ...] = (),
    expanded: Mapping[str, str] | None = None,
) -> tuple[TableRef, ...]:
    """Every table and file list that main.cf (with defaults) and master.cf reference.

    ``parameter_names`` are the names to scan besides main.cf's own (normally every
    parameter Postfix knows, so defaults such as ``alias_maps`` count). ``expanded`` may
    hold already expanded values of those names, to save expanding them again.
    """
    collector = _Collector(expander.expand("queue_directory") or "/", {})
    services = tuple(services)
    names = dict.fromkeys((*parameter_names, *main.parameters))
    known = frozenset(parameter_names)
    used = _used_user_parameters(main, services, expander, known)
    for name in names:
        if name in NOT_READ or name.endswith(ENDPOINT_SUFFIXES):
            continue
        if known and name not in known and name not in used:
            continue
        value = expanded.get(name) if expanded is not None else None
        if value is None:
            value = _expanded(expander, name)
        if not value:
            continue
        for word, leaf in _table_words(value, name in MATCH_LIST_PARAMETERS):
            collector.add(word, leaf, name, None)
    for service in services:
        if not service.overrides:
            continue
        local = expander.with_overrides(service.overrides)
        for name in service.overrides:
            if name in NOT_READ or name.endswith(ENDPOINT_SUFFIXES):
                continue
            value = _expanded(local, name)
            if not value:
                continue
            for word, leaf in _table_words(value, name in MATCH_LIST_PARAMETERS):
                collector.add(word, leaf, name, service.key)
    return tuple(sorted(collector.found.values(), key=lambda ref: ref.ref))


def _mtime(path: str) -> float | None:
    try:
        return Path(path).stat().st_mtime
    except FileNotFoundError:
        return None


def freshness(ref: TableRef) -> Freshness:
    """Compare source and compiled files on disk (``stale``: source newer than compiled)."""
    if ref.source is None:
        return Freshness("n/a")
    try:
        source = _mtime(ref.source)
        compiled = [_mtime(path) for path in ref.compiled]
    except OSError as exc:
        return Freshness("unreadable", detail=f"{exc.filename}: {exc.strerror}")
    if source is not None and not os.access(ref.source, os.R_OK):
        return Freshness("unreadable", source, None, f"{ref.source}: permission denied")
    if not ref.compiled:
        return Freshness("present" if source is not None else "missing", source)
    built = (
        None
        if any(mtime is None for mtime in compiled)
        else min(mtime for mtime in compiled if mtime is not None)
    )
    if source is None and built is None:
        return Freshness("missing")
    if built is None:
        return Freshness("not-compiled", source, None)
    if source is None:
        return Freshness("source-missing", None, built)
    if source > built:
        return Freshness("stale", source, built)
    return Freshness("fresh", source, built)
