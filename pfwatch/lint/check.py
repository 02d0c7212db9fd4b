"""Lint a parsed Postfix configuration the way ``postconf`` and ``master`` would object.

Inputs: :class:`LintInput`: parsed main.cf and master.cf, Postfix's built-in defaults
(``postconf -d`` names and values) and, optionally, the referenced tables (with freshness)
and the transport names found inside ``transport_maps``. Outputs: a tuple of
:class:`LintFinding`, sorted by file and line. Errors: none (a rule that cannot decide
stays silent).

The rules mirror Postfix's own (each :data:`RULES` row cites where Postfix decides):

- ``unused-parameter``: a ``name=value`` whose name is neither built in, nor
  service-defined (``<service>_destination_concurrency_limit`` ... for master.cf
  delivery agents), nor a user-defined name referenced as ``$name`` in some value or
  listed in ``smtpd_restriction_classes``, nor a legacy DBMS parameter (``ldapsource_*``
  for ``ldap:ldapsource``). Postfix's wording: ``DIR/main.cf: unused parameter: foo=bar``.
- ``duplicate-parameter``: ``main.cf, line N: overriding earlier entry: name=value``.
- ``undefined-parameter``: ``$name`` with no value anywhere (it expands to nothing).
- ``missing-daemon``: a master.cf command that is not in ``daemon_directory``.
- ``missing-transport``: a transport named in main.cf (or a transport table) with no
  master.cf service of that name.
- ``missing-table`` / ``table-not-built`` / ``table-stale``: a referenced table or file
  list that does not exist, was never compiled, or is older than its source.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pfwatch.config.model import MainCf, MasterCf, MasterService
from pfwatch.events import TableFacts
from pfwatch.lint.rules import (
    LEGACY_DBMS_TYPES,
    NON_SERVICE_TRANSPORTS,
    RAW_PARAMETERS,
    RULES,
    SERVICE_SUFFIXES,
    TRANSPORT_PARAMETERS,
    Severity,
)

_MACRO = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)|\(([A-Za-z0-9_]+)|([A-Za-z0-9_]+))")
_LEGACY_DBMS_REF = re.compile(r"\b(" + "|".join(sorted(LEGACY_DBMS_TYPES)) + r"):([A-Za-z0-9_]+)\b")


def macro_names(value: str) -> list[str]:
    """Every ``$name`` a Postfix value expands, in order (``$$`` is a literal dollar)."""
    names: list[str] = []
    for match in _MACRO.finditer(value):
        name = match.group(1) or match.group(2) or match.group(3)
        if name:
            names.append(name)
    return names


@dataclass(frozen=True, slots=True)
class LintFinding:
    """One problem: where, what, and a suggestion when there is one."""

    code: str
    severity: Severity
    path: str
    line: int
    message: str
    subject: str
    suggestion: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "path": self.path,
            "line": self.line,
            "subject": self.subject,
            "message": self.message,
            "suggestion": self.suggestion,
            "source": RULES[self.code].source,
        }

    def render(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        hint = f" (did you mean {self.suggestion}?)" if self.suggestion else ""
        return f"{where}: {self.severity}: {self.message}{hint}"


@dataclass(frozen=True, slots=True)
class LintInput:
    """Everything lint looks at; ``defaults`` is name -> Postfix default value."""

    main: MainCf
    master: MasterCf
    defaults: Mapping[str, str]
    tables: Sequence[TableFacts] = ()
    table_transports: Mapping[str, Sequence[str]] = field(default_factory=dict)
    check_daemons: bool = True
    raw: frozenset[str] = frozenset()
    """Extra never-expanded names (``ParameterKnowledge.raw``) besides RAW_PARAMETERS."""
    legacy: frozenset[str] = frozenset()
    """Legacy names postconf still accepts (``ParameterKnowledge.legacy``)."""


def _finding(
    code: str, path: str, line: int, subject: str, message: str, *, hint: str | None = None
) -> LintFinding:
    return LintFinding(code, RULES[code].severity, path, line, message, subject, hint)


def service_defined_names(master: MasterCf) -> set[str]:
    """Parameters that master.cf delivery agents bring into existence."""
    names: set[str] = set()
    for service in master.services:
        for suffix in SERVICE_SUFFIXES.get(service.command.rsplit("/", 1)[-1], ()):
            names.add(service.name + suffix)
    return names


def _restriction_classes(value: str) -> list[str]:
    return [name for name in re.split(r"[,\s]+", value) if name]


def _scan_values(
    values: Iterable[tuple[str, str]], raw: frozenset[str] = RAW_PARAMETERS
) -> list[str]:
    names: list[str] = []
    for name, value in values:
        if name not in raw:
            names.extend(macro_names(value))
    return names


def _suggest(name: str, known: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)
    return matches[0] if matches else None


def _lint_parameters(data: LintInput) -> list[LintFinding]:
    main, master, defaults = data.main, data.master, data.defaults
    explicit = {name: p.value for name, p in main.parameters.items()}
    raw = RAW_PARAMETERS | data.raw
    known = set(defaults) | data.legacy | service_defined_names(master)
    for value in explicit.values():
        for match in _LEGACY_DBMS_REF.finditer(value):
            prefix = match.group(2) + "_"
            known.update(name for name in explicit if name.startswith(prefix))
    global_refs = set(_scan_values(explicit.items(), raw))
    global_refs.update(
        _scan_values(((n, v) for n, v in defaults.items() if n not in explicit), raw)
    )
    classes = explicit.get(
        "smtpd_restriction_classes", defaults.get("smtpd_restriction_classes", "")
    )
    global_refs.update(_restriction_classes(classes))
    for service in master.services:
        global_refs.update(_scan_values(service.overrides.items(), raw))
    valid_user = {name for name in global_refs if name in explicit}
    findings: list[LintFinding] = []
    for name, param in main.parameters.items():
        if name not in known and name not in valid_user:
            findings.append(
                _finding(
                    "unused-parameter",
                    main.path,
                    param.line,
                    name,
                    f"unused parameter: {name}={param.value}",
                    hint=_suggest(name, known),
                )
            )
    for dup in main.duplicates:
        value = explicit.get(dup.name, "")
        findings.append(
            _finding(
                "duplicate-parameter",
                main.path,
                dup.last_line,
                dup.name,
                f"overriding earlier entry: {dup.name} (first set on line {dup.first_line}, "
                f"now {dup.name}={value})",
            )
        )
    every_override = {n for s in master.services for n in s.overrides}
    defined = known | set(explicit) | every_override
    for name, param in main.parameters.items():
        if name in raw:
            continue
        for ref in macro_names(param.value):
            if ref not in defined:
                findings.append(
                    _finding(
                        "undefined-parameter",
                        main.path,
                        param.line,
                        ref,
                        f"undefined parameter: {ref} (in {name})",
                        hint=_suggest(ref, defined),
                    )
                )
    main_refs = set(_scan_values(explicit.items(), raw))
    for service in master.services:
        findings.extend(
            _lint_service_overrides(
                service,
                master.path,
                raw=raw,
                known=known | valid_user,
                main_refs=main_refs,
                classes=classes,
                defined=defined,
            )
        )
    return findings


def _lint_service_overrides(
    service: MasterService,
    path: str,
    *,
    raw: frozenset[str],
    known: set[str],
    main_refs: set[str],
    classes: str,
    defined: set[str],
) -> list[LintFinding]:
    local_refs = set(_scan_values(service.overrides.items(), raw)) | main_refs
    local_valid = {n for n in local_refs if n in service.overrides}
    local_valid.update(n for n in _restriction_classes(classes) if n in service.overrides)
    local_classes = service.overrides.get("smtpd_restriction_classes", "")
    local_valid.update(n for n in _restriction_classes(local_classes) if n in service.overrides)
    findings: list[LintFinding] = []
    for name, value in service.overrides.items():
        if name not in known and name not in local_valid:
            findings.append(
                _finding(
                    "unused-parameter",
                    path,
                    service.line,
                    name,
                    f"unused parameter: {name}={value} (service {service.key})",
                    hint=_suggest(name, known),
                )
            )
        if name in raw:
            continue
        for ref in macro_names(value):
            if ref not in defined and ref not in service.overrides:
                findings.append(
                    _finding(
                        "undefined-parameter",
                        path,
                        service.line,
                        ref,
                        f"undefined parameter: {ref} (in -o {name}, service {service.key})",
                    )
                )
    return findings


def effective_value(
    name: str,
    main: MainCf,
    defaults: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
    depth: int = 0,
) -> str:
    """The value of ``name`` with plain ``$name``/``${name}`` references replaced."""
    if overrides and name in overrides:
        raw = overrides[name]
    elif name in main.parameters:
        raw = main.parameters[name].value
    else:
        raw = defaults.get(name, "")
    if depth > 20:
        return raw

    def replace(match: re.Match[str]) -> str:
        ref = match.group(1) or match.group(2)
        return effective_value(ref, main, defaults, overrides, depth + 1)

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", replace, raw)


def transport_of(value: str) -> str:
    """``smtp:[host]:25`` -> ``smtp``; an empty value names no transport."""
    return value.strip().split(":", 1)[0].strip()


def _lint_transports(data: LintInput) -> list[LintFinding]:
    main, master = data.main, data.master
    services = {s.name for s in master.services if s.type == "unix"}
    findings: list[LintFinding] = []
    reported: set[str] = set()
    for name in TRANSPORT_PARAMETERS:
        value = effective_value(name, main, data.defaults)
        transport = transport_of(value)
        if transport in NON_SERVICE_TRANSPORTS or transport in services | reported:
            continue
        reported.add(transport)
        param = main.parameters.get(name)
        line = param.line if param else 0
        origin = "" if param else " (Postfix default)"
        findings.append(
            _finding(
                "missing-transport",
                main.path,
                line,
                transport,
                f"{name} = {value}{origin} names transport '{transport}', "
                f"which has no 'unix' service in master.cf",
                hint=_suggest(transport, services),
            )
        )
    for service in master.services:
        filt = service.overrides.get("content_filter")
        if filt and transport_of(filt) not in services:
            findings.append(
                _finding(
                    "missing-transport",
                    master.path,
                    service.line,
                    transport_of(filt),
                    f"-o content_filter={filt} (service {service.key}) names transport "
                    f"'{transport_of(filt)}', which has no 'unix' service in master.cf",
                )
            )
    for ref, values in data.table_transports.items():
        for value in values:
            transport = transport_of(value)
            if transport and transport not in services:
                findings.append(
                    _finding(
                        "missing-transport",
                        main.path,
                        0,
                        transport,
                        f"{ref} maps to '{value}': transport '{transport}' has no 'unix' "
                        f"service in master.cf",
                        hint=_suggest(transport, services),
                    )
                )
    return findings


def _lint_daemons(data: LintInput) -> list[LintFinding]:
    daemon_dir = effective_value("daemon_directory", data.main, data.defaults)
    findings: list[LintFinding] = []
    if not Path(daemon_dir).is_dir():
        # Postfix's programs are not on this file system (a sidecar container that sees
        # only the configuration): nothing to check, and no reason to call them missing.
        return findings
    for service in data.master.services:
        command = service.command
        path = command if command.startswith("/") else f"{daemon_dir}/{command}"
        if not os.access(path, os.X_OK):
            findings.append(
                _finding(
                    "missing-daemon",
                    data.master.path,
                    service.line,
                    command,
                    f"service {service.key}: command {path} does not exist or is not executable",
                    hint=_suggest(command, _daemon_names(daemon_dir)),
                )
            )
    return findings


def _daemon_names(daemon_dir: str) -> list[str]:
    try:
        return sorted(p.name for p in Path(daemon_dir).iterdir())
    except OSError:
        return []


def _lint_tables(tables: Sequence[TableFacts], main_path: str) -> list[LintFinding]:
    findings: list[LintFinding] = []
    seen: set[str] = set()
    for table in tables:
        if table.ref in seen:
            continue
        seen.add(table.ref)
        used_by = ", ".join(table.parameters) or "main.cf"
        source_exists = table.source is not None and Path(table.source).exists()
        compiled_exists = table.compiled is not None and Path(table.compiled).exists()
        if table.source is not None and not source_exists and not compiled_exists:
            findings.append(
                _finding(
                    "missing-table",
                    main_path,
                    0,
                    table.ref,
                    f"{table.ref} (used by {used_by}): {table.source} does not exist",
                )
            )
        elif table.compiled is not None and not compiled_exists:
            findings.append(
                _finding(
                    "table-not-built",
                    main_path,
                    0,
                    table.ref,
                    f"{table.ref} (used by {used_by}): {table.compiled} does not exist; "
                    f"run postmap {table.type}:{table.source}",
                )
            )
        elif table.fresh is False:
            findings.append(
                _finding(
                    "table-stale",
                    main_path,
                    0,
                    table.ref,
                    f"{table.ref} (used by {used_by}): {table.source} is newer than "
                    f"{table.compiled}; run postmap {table.type}:{table.source}",
                )
            )
    return findings


def lint(data: LintInput) -> tuple[LintFinding, ...]:
    """Run every rule; findings sorted by file, line and code."""
    findings = _lint_parameters(data) + _lint_transports(data)
    if data.check_daemons:
        findings += _lint_daemons(data)
    findings += _lint_tables(data.tables, data.main.path)
    return tuple(sorted(findings, key=lambda f: (f.path, f.line, f.code, f.subject)))
