"""The lint rules as data: codes, severities and the Postfix source behind each.

Also the parameter facts the rules need: parameters Postfix stores unexpanded (raw),
the suffixes of service-defined parameters, legacy DBMS lookup types and the parameters
that name a transport. Every table cites the Postfix 3.7 source it mirrors. Inputs: none.
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

# Parameters stored unexpanded: their $names are per-request macros (CONFIG_RAW_TABLE in
# src/local/local.c, src/smtpd/smtpd.c:6765-6770, src/postscreen/postscreen.c raw_table).
RAW_PARAMETERS: frozenset[str] = frozenset(
    {
        "command_execution_directory",
        "forward_path",
        "mailbox_command",
        "luser_relay",
        "smtpd_reject_footer",
        "smtpd_expansion_filter",
        "default_rbl_reply",
        "postscreen_command_time_limit",
        "postscreen_reject_footer",
        "postscreen_expansion_filter",
    }
)

# Suffixes of service-defined parameters (src/postconf/postconf_service.c, names from
# src/global/mail_params.h): every delivery agent gets the qmgr ones, pipe and spawn
# also get <service>_time_limit.
QMGR_SUFFIXES = (
    "_recipient_limit",
    "_extra_recipient_limit",
    "_recipient_refill_limit",
    "_recipient_refill_delay",
    "_delivery_slot_cost",
    "_delivery_slot_loan",
    "_delivery_slot_discount",
    "_minimum_delivery_slots",
    "_initial_destination_concurrency",
    "_destination_concurrency_limit",
    "_destination_recipient_limit",
    "_destination_concurrency_positive_feedback",
    "_destination_concurrency_negative_feedback",
    "_destination_concurrency_failed_cohort_limit",
    "_destination_rate_delay",
)
SERVICE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "local": QMGR_SUFFIXES,
    "error": QMGR_SUFFIXES,
    "virtual": QMGR_SUFFIXES,
    "smtp": QMGR_SUFFIXES,
    "lmtp": QMGR_SUFFIXES,
    "pipe": ("_time_limit", *QMGR_SUFFIXES),
    "spawn": ("_time_limit",),
}

# Legacy DBMS lookups whose parameters live in main.cf as <name>_<field>
# (src/postconf/postconf_dbms.c).
LEGACY_DBMS_TYPES: frozenset[str] = frozenset({"ldap", "mysql", "pgsql", "sqlite", "memcache"})

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
