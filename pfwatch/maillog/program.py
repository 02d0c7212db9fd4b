"""Decompose a syslog tag such as ``postfix-out/submission/smtpd`` into its parts.

A Postfix process logs under ``syslog_name + "/" + program``. The program (last
component) names the daemon; the first component is the instance's syslog name
(``postfix``, ``postfix-out``, ``10025``); components in between usually name the
master.cf service (``-o syslog_name=postfix/submission``). Inputs: the tag and an optional
mapping syslog_name -> master.cf service name read from master.cf. Output:
:class:`ProgramName` or ``None`` when the tag is not a Postfix program. Errors: none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pfwatch.grammars.maillog_catalogue import POSTFIX_PROGRAMS

_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class ProgramName:
    """The parts of a Postfix syslog tag."""

    program: str
    instance: str
    service: str
    daemon: str


class ProgramDecomposer:
    """Cached tag decomposition, aware of the configured ``syslog_name`` values.

    ``syslog_services`` maps a syslog name as logged (``postfix/submission``,
    ``mailin``) to the master.cf service it belongs to (``submission``,
    ``127.0.0.1:10025``). A tag whose prefix is a configured syslog name is a Postfix
    program even when its last component is not a known program name.
    """

    def __init__(self, syslog_services: Mapping[str, str] | None = None) -> None:
        self._services = dict(syslog_services or {})
        self._cache: dict[str, ProgramName | None] = {}

    def __call__(self, tag: str) -> ProgramName | None:
        """The decomposition of ``tag`` or None when it is not a Postfix program."""
        try:
            return self._cache[tag]
        except KeyError:
            pass
        result = self._decompose(tag)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[tag] = result
        return result

    def _decompose(self, tag: str) -> ProgramName | None:
        syslog_name, slash, daemon = tag.rpartition("/")
        if not slash or not daemon:
            return None
        configured = syslog_name in self._services
        if daemon not in POSTFIX_PROGRAMS and not configured:
            return None
        parts = syslog_name.split("/")
        instance = parts[0]
        if configured:
            service = self._services[syslog_name]
        elif len(parts) > 1:
            service = "/".join(parts[1:])
        else:
            service = ""
        return ProgramName(tag, instance, service, daemon)


def decompose(tag: str, syslog_services: Mapping[str, str] | None = None) -> ProgramName | None:
    """One-off decomposition (uncached); see :class:`ProgramDecomposer`."""
    return ProgramDecomposer(syslog_services)(tag)
