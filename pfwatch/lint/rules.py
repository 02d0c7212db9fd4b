"""The lint rules as data: codes, severities and the Postfix source behind each.

Also the parameters that name a transport. Which parameter names Postfix knows (built-in,
raw, legacy, service-defined, DBMS client names) is not here: lint reads it from the one
table :class:`pfwatch.config.defaults.ParameterKnowledge` that ``pfwatch config`` uses.
Every table cites the Postfix 3.7 source it mirrors. Inputs: none.
Outputs: constants. Errors: none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class LintRule:
    """One kind of finding, with the Postfix source that makes it a problem."""

    code: str
    severity: Severity
    summary: str
    source: str


RULES: dict[str, LintRule] = {
    rule.code: rule
    for rule in (
        LintRule(
            "unused-parameter",
            "warning",
            "parameter name Postfix does not know",
            "src/postconf/postconf_unused.c pcf_flag_unused_parameters()",
        ),
        LintRule(
            "duplicate-parameter",
            "warning",
            "parameter set twice; the last one wins",
            "src/util/dict.c dict_load_fp() 'overriding earlier entry'",
        ),
        LintRule(
            "undefined-parameter",
            "warning",
            "$name refers to a parameter with no value",
            "src/postconf/postconf_user.c flag_user_parameter()",
        ),
        LintRule(
            "missing-daemon",
            "error",
            "master.cf command not found",
            "src/master/master_ent.c:523 (command path = daemon_directory/command)",
        ),
        LintRule(
            "missing-transport",
            "error",
            "transport has no master.cf service",
            "src/qmgr/qmgr_transport.c (connect to private/<transport> fails, mail defers)",
        ),
        LintRule(
            "missing-table",
            "error",
            "referenced table or file does not exist",
            "src/util/dict_surrogate.c:81 ('%s:%s is unavailable')",
        ),
        LintRule(
            "table-not-built",
            "error",
            "indexed table was never compiled (run postmap)",
            "src/util/dict_db.c:699 ('open database %s: %m')",
        ),
        LintRule(
            "table-stale",
            "error",
            "table source is newer than the compiled file",
            "src/util/dict_db.c:800-804 ('database %s is older than source file %s')",
        ),
    )
}

# main.cf parameters whose value names a transport ("transport[:nexthop]"), per
# postconf(5); trivial-rewrite resolves with them (src/trivial-rewrite/resolve.c).
TRANSPORT_PARAMETERS: tuple[str, ...] = (
    "default_transport",
    "relay_transport",
    "local_transport",
    "virtual_transport",
    "fallback_transport",
    "mailbox_transport",
    "content_filter",
    "address_verify_default_transport",
    "address_verify_local_transport",
    "address_verify_relay_transport",
    "address_verify_virtual_transport",
)
# Pseudo-transports that are not master.cf services.
NON_SERVICE_TRANSPORTS = frozenset({""})
