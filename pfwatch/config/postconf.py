"""What ``postconf -n [-x]`` and ``postconf -M [-x]`` print, computed from parsed files.

postconf shows a main.cf parameter with ``-n`` only if it knows the name
(src/postconf/postconf_main.c:188-207): a built-in or legacy name, a service-specific
name derived from a master.cf service (postconf_service.c:120-199), or a user-defined
name that some value references as ``$name`` and that main.cf sets
(postconf_user.c:348-422: master.cf ``-o`` values, defaults of unset parameters, main.cf
values, and ``smtpd_restriction_classes``). Read-only names are dropped
(postconf_user.c:284-293); raw parameters are never expanded (postconf_main.c:161-163).
Lines are printed with whitespace runs collapsed (pcf_print_line(),
postconf_print.c:96-113) and master.cf entries are laid out as pcf_print_master_entry()
does (postconf_master.c:472-600). ``postconf -c DIR`` (or ``$MAIL_CONFIG``) also puts
``config_directory = DIR`` into the parameter set (postconf_misc.c:48-60).

Inputs: :class:`MainCf`, optional :class:`MasterCf`, :class:`ParameterKnowledge`.
Outputs: output lines without newlines. Errors: :class:`ExpansionError` where postconf
stops with "macro processing error".
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import pfwatch.grammars.master_cf as master_grammar
from pfwatch.config.defaults import (
    MYNETWORKS_INPUTS,
    DefaultUnavailable,
    ParameterKnowledge,
    domain_default,
    hostname_default,
    mynetworks_default,
)
from pfwatch.config.expand import Expander, ExpansionError, expand_text, scan_names
from pfwatch.config.model import MainCf, MasterCf, MasterService
from pfwatch.errors import ConfigSyntaxError
from pfwatch.grammars.expansion import ExpansionSyntaxError

_SEPARATORS = re.compile(r"[ \t\r\n]+")
#: pcf_print_master_entry() column goals of the 8 fields (postconf_master.c:482-491).
_COLUMNS = (0, 11, 17, 25, 33, 41, 49, 57)
_MASTER_BLANKS = " \t\r\n"
REST_CLASSES = "smtpd_restriction_classes"
_CLASS_SEPARATORS = re.compile(r"[, \t\r\n]+")


def print_line(text: str) -> str:
    """pcf_print_line() without folding: words separated by single spaces."""
    return " ".join(word for word in _SEPARATORS.split(text) if word)


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class ParameterTable:
    """The parameter names and values postconf works with for one configuration."""

    explicit: Mapping[str, str]
    defaults: Mapping[str, str]
    user: frozenset[str]
    raw: frozenset[str]
    readonly: frozenset[str]
    lines: Mapping[str, int]
    path: str

    def shown(self) -> list[str]:
        """Names ``postconf -n`` prints, in its (strcmp) order."""
        names = [n for n in self.explicit if n in self.defaults or n in self.user]
        return sorted(names, key=_sort_key)

    def expander(self) -> Expander:
        """Expansion with postconf's global lookup order: main.cf, then defaults."""
        return Expander(
            self.explicit,
            self.defaults,
            raw_names=self.raw,
            path=self.path,
            lines=self.lines,
        )


def service_parameters(master: MasterCf | None, knowledge: ParameterKnowledge) -> dict[str, str]:
    """The parameters master.cf services bring into existence, with their defaults
    (``<service>_destination_concurrency_limit = $default_destination_concurrency_limit``
    for a delivery agent ..., postconf_service.c:120-199)."""
    found: dict[str, str] = {}
    for service in master.services if master else ():
        for suffix, parameter in knowledge.service_parameters.get(service.command, ()):
            found.setdefault(service.name + suffix, "$" + parameter)
    return found


def _dict_eval(value: str, scope: Mapping[str, str], path: str) -> str:
    """dict_eval() over one name space only (no defaults), as pcf_lookup_eval() does."""
    try:
        return expand_text(value, scope.get)
    except ExpansionSyntaxError as exc:
        raise ExpansionError(path, 0, exc.offset + 1, f"{REST_CLASSES}: {exc.message}") from None


def _lookup_eval(explicit: Mapping[str, str], name: str, main: MainCf) -> str | None:
    """mail_conf_lookup_eval(): a main.cf value expanded with main.cf values only; a
    syntax error is fatal to Postfix (dict_eval(), src/util/dict.c:553-557)."""
    value = explicit.get(name)
    if value is None:
        return None
    try:
        return expand_text(value, explicit.get)
    except ExpansionSyntaxError as exc:
        line = main.parameters[name].line if name in main.parameters else 0
        raise ExpansionError(
            main.path, line, exc.offset + 1, f"{name}: macro processing error: {exc.message}"
        ) from None


def _function_defaults(
    explicit: Mapping[str, str], knowledge: ParameterKnowledge, main: MainCf
) -> dict[str, str]:
    """Defaults postconf computes from the host and main.cf (postconf_builtin.c:170-290).

    postconf computes them only for parameters main.cf leaves unset (while scanning
    default values, postconf_user.c:319-346), and stops where that computation fails.
    """
    found: dict[str, str] = {}
    host = socket.gethostname()
    if "myhostname" not in explicit:
        mydomain = _lookup_eval(explicit, "mydomain", main) if "." not in host else None
        found["myhostname"] = hostname_default(mydomain)
    if "mydomain" not in explicit:
        named = _lookup_eval(explicit, "myhostname", main)
        if named is None:
            named = hostname_default(_lookup_eval(explicit, "mydomain", main))
        found["mydomain"] = domain_default(named)
    if "mynetworks" not in explicit:
        inputs: dict[str, str] = {}
        pending = [n for n in MYNETWORKS_INPUTS if n in explicit]
        while pending:
            name = pending.pop()
            if name in inputs or name not in explicit:
                continue
            inputs[name] = explicit[name]
            pending.extend(scan_names(explicit[name]))
        try:
            found["mynetworks"] = mynetworks_default(inputs, knowledge.postconf)
        except DefaultUnavailable as exc:
            first = min(
                (main.parameters[n].line for n in inputs if n in main.parameters), default=0
            )
            raise ConfigSyntaxError(
                main.path, first, 1, f"mynetworks default cannot be computed: {exc}"
            ) from None
    return found


def _dbms_words(text: str) -> list[str]:
    """mystrtokq(text, ", \\t\\r\\n", "{}"): words, where ``{...}`` may hold separators."""
    words: list[str] = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos] in ", \t\r\n":
            pos += 1
        if pos == len(text):
            break
        start, depth = pos, 0
        while pos < len(text):
            char = text[pos]
            if char == "{":
                depth += 1
            elif depth > 0 and char == "}":
                depth -= 1
            elif depth == 0 and char in ", \t\r\n":
                break
            pos += 1
        words.append(text[start:pos])
        pos += 1
    return words


def _brace_inner(word: str) -> str:
    """extpar() without stripping: the text inside a leading ``{...}``."""
    return master_grammar.strip_braces(word, strip=False)[0]


def dbms_candidates(value: str, suffixes: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Legacy client parameter names a ``type:name`` reference implies
    (pcf_register_dbms_helper(), src/postconf/postconf_dbms.c:217-317)."""
    found: list[str] = []
    for word in _dbms_words(value):
        if word.startswith("{"):
            found.extend(dbms_candidates(_brace_inner(word), suffixes))
            continue
        db_type, sep, prefix = word.partition(":")
        while sep and db_type == "proxy":
            db_type, sep, prefix = prefix.partition(":")
        if not sep or prefix.startswith(("/", ".")):
            continue
        if prefix.startswith("{"):
            found.extend(dbms_candidates(_brace_inner(prefix), suffixes))
        elif db_type in suffixes:
            found.extend(f"{prefix}_{suffix}" for suffix in suffixes[db_type])
    return found


def local_scope(service: MasterService, readonly: frozenset[str]) -> dict[str, str]:
    """A service's ``-o`` settings as postconf reads them from its normalised argv
    (postconf_user.c:370-392; read-only names dropped, postconf_user.c:284-293)."""
    pairs = master_grammar.overrides_of(list(service.args))
    return {k: v for k, v in pairs if k not in readonly}


def build_table(
    main: MainCf,
    master: MasterCf | None,
    knowledge: ParameterKnowledge,
    config_directory: str | None = None,
    process_id: int | None = None,
) -> ParameterTable:
    """Reproduce postconf's parameter table for ``main`` (and ``master``).

    ``process_id`` is what ``$process_id`` expands to (postconf uses its own pid,
    postconf_builtin.c:465-468); default: this process.
    """
    explicit: dict[str, str] = {}
    if config_directory is not None:
        explicit["config_directory"] = config_directory
    for name, parameter in main.parameters.items():
        explicit[name] = parameter.value
    # postconf drops a read-only assignment when its scan of main.cf reaches it, in the
    # order of a randomly seeded hash table (src/util/htable.c:140, hash_fnv.c:79-90), so
    # a value expanded earlier may still see it: postconf itself then varies from run to
    # run. We drop them first, as in the runs where the scan reaches them first.
    for name in knowledge.readonly:
        explicit.pop(name, None)
    defaults = dict(knowledge.defaults)
    defaults["process_id"] = str(process_id if process_id is not None else os.getpid())
    defaults.update(_function_defaults(explicit, knowledge, main))
    for name in knowledge.legacy:
        defaults.setdefault(name, "")
    for name, value in service_parameters(master, knowledge).items():
        defaults.setdefault(name, value)
    user: set[str] = set()
    lines = {name: parameter.line for name, parameter in main.parameters.items()}

    def flag(names: frozenset[str] | list[str], scope: Mapping[str, str] | None) -> None:
        for name in names:
            if scope is not None and name in scope:
                continue
            if name in explicit:
                user.add(name)

    def known(name: str) -> bool:
        return name in defaults or name in user

    builtin_or_service = frozenset(knowledge.defaults) | frozenset(
        service_parameters(master, knowledge)
    )

    def register_dbms(
        name: str, value: str, scope: Mapping[str, str] | None, service: MasterService | None
    ) -> None:
        """postconf_user.c:302-313: expand built-in/service values (fatal on a syntax
        error, postconf_lookup.c:183-186) and flag legacy client parameters."""
        if name not in builtin_or_service:
            return
        lookup = {**explicit, **(scope or {})}
        expander = Expander(lookup, defaults, path=main.path, lines=lines)
        try:
            expanded = expander.expand(name) if scope is None else expander.expand_value(value)
        except ExpansionError as exc:
            if service is None or scope is None or (exc.parameter not in (None, *scope)):
                raise
            raise ExpansionError(
                service.path, service.line, 1, f"{service.key}: -o {name}: {exc.message}"
            ) from None
        flag(dbms_candidates(expanded, knowledge.dbms_suffixes), scope)

    for service in master.services if master else ():
        if not master_grammar.overrides_of(list(service.args)):
            continue  # no -o: postconf makes no name space (postconf_user.c:395-398)
        scope = local_scope(service, knowledge.readonly)
        if REST_CLASSES in scope:
            classes = _dict_eval(scope[REST_CLASSES], scope, master.path if master else "")
            flag([n for n in _CLASS_SEPARATORS.split(classes) if n], scope)
        for name, value in scope.items():
            if known(name) and name in knowledge.raw:
                continue
            flag(scan_names(value), scope)
            register_dbms(name, value, scope, service)
    for name in list(defaults):
        if name not in explicit and name not in knowledge.raw:
            flag(scan_names(defaults[name]), None)
    if REST_CLASSES in explicit:
        classes = _dict_eval(explicit[REST_CLASSES], explicit, main.path)
        flag([n for n in _CLASS_SEPARATORS.split(classes) if n], None)
    for name, value in explicit.items():
        if known(name) and name in knowledge.raw:
            continue
        flag(scan_names(value), None)
        register_dbms(name, value, None, None)
    return ParameterTable(
        explicit=explicit,
        defaults=defaults,
        user=frozenset(user),
        raw=knowledge.raw,
        readonly=knowledge.readonly,
        lines=lines,
        path=main.path,
    )


def show_nondefault(table: ParameterTable, expand: bool = False) -> list[str]:
    """``postconf -n`` (``-n -x`` with ``expand``) output lines."""
    expander = table.expander()
    out = []
    for name in table.shown():
        value = expander.expand(name) if expand else table.explicit[name]
        out.append(print_line(f"{name} = {value}"))
    return out


def _service_lookup(service: MasterService, table: ParameterTable) -> Expander:
    """postconf's local scope (postconf_lookup.c:117-131): process_name/service_name,
    then the service's ``-o`` settings, then main.cf, then defaults."""
    process_name = service.command.rsplit("/", 1)[-1]
    readonly = {
        "process_name": process_name,
        "service_name": service.name if service.name != process_name else process_name,
    }
    scope = {**table.explicit, **local_scope(service, table.readonly), **readonly}
    return Expander(scope, table.defaults, raw_names=table.raw, path=table.path)


def master_entry_line(
    service: MasterService, table: ParameterTable | None = None, expand: bool = False
) -> str:
    """One ``postconf -M`` line (``-M -x`` with ``expand``), without folding."""
    fields = (
        service.name,
        service.type,
        service.private,
        service.unpriv,
        service.chroot,
        service.wakeup,
        service.maxproc,
        service.command,
    )
    text = ""
    for goal, field in zip(_COLUMNS, fields, strict=True):
        if text:
            text += " "
            text += " " * max(0, goal - len(text))
        text += field
    expander = _service_lookup(service, table) if (expand and table) else None
    args = service.args
    in_options = True
    index = 0
    while index < len(args):
        arg = args[index]
        value: str | None = None
        braces = False
        if in_options:
            if not arg.startswith("-") or arg == "--":
                in_options = False
            elif (len(arg) < 2 or arg[1] == "o") and index + 1 < len(args):
                value = args[index + 1]
                if arg == "-o" and expander is not None:
                    value = expander.expand_value(value)
                braces = any(c in _MASTER_BLANKS for c in value)
        else:
            braces = any(c in _MASTER_BLANKS for c in arg)
        text += " "
        text += "{" + arg + "}" if (not in_options and braces) else arg
        if value is not None:
            text += " " + ("{" + value + "}" if braces else value)
            index += 1
        index += 1
    return text


def show_master(
    master: MasterCf, table: ParameterTable | None = None, expand: bool = False
) -> list[str]:
    """``postconf -M`` (``-M -x`` with ``expand``) output lines."""
    return [master_entry_line(service, table, expand) for service in master.services]
