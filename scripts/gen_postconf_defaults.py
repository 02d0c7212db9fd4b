#!/usr/bin/env python3
"""Regenerate pfwatch/knowledge/data/postconf-defaults.json from the installed Postfix.

Runs ``postconf -d`` (defaults of every built-in parameter) in an empty private
configuration directory, then probes which parameters postconf never expands (the
CONFIG_RAW_TABLE ones, src/postconf/postconf_builtin.c:116-119, 427-430): it sets every
parameter to ``$process_name`` and asks ``postconf -n -x``; raw ones come back
unexpanded. Legacy and read-only names are Postfix source facts, cited in the output.

Usage: ``python scripts/gen_postconf_defaults.py [OUTPUT]`` (default: the shipped path), or
``python scripts/gen_postconf_defaults.py --chroot DIR`` for another release: the postconf
of a Debian chroot (``debootstrap --variant=minbase --include=postfix SUITE DIR``) is asked
and only what differs from the shipped (base) table is written, to
``pfwatch/knowledge/data/releases/postconf-defaults-<version>.json``.
Needs: Postfix's ``postconf`` on PATH (or in the chroot). Errors: exits non-zero with
postconf's message.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[1] / "pfwatch/knowledge/data/postconf-defaults.json"

#: src/postconf/postconf_builtin.c:139-154 (pcf_legacy_str_table, default "").
LEGACY = [
    "virtual_maps",
    "fallback_relay",
    "authorized_verp_clients",
    "smtpd_client_connection_limit_exceptions",
    "postscreen_dnsbl_ttl",
    "postscreen_blacklist_action",
    "postscreen_dnsbl_whitelist_threshold",
    "postscreen_whitelist_interfaces",
    "lmtp_per_record_deadline",
    "smtp_per_record_deadline",
    "smtpd_per_record_deadline",
    "tlsproxy_client_level",
    "tlsproxy_client_policy",
]
#: src/postconf/postconf_builtin.c:457-468 (PCF_PARAM_FLAG_READONLY; deleted from main.cf).
READONLY = ["process_name", "service_name", "process_id"]
PROBE = "$process_name"
#: src/postconf/postconf_service.c:120-199: a master.cf service whose command is one of
#: these programs gets "<service><suffix>" parameters defaulting to "$<parameter>".
#: Suffix and parameter names: src/global/mail_params.h (line cited per row).
SERVICE_SUFFIXES = [
    ["_time_limit", "command_time_limit", "mail_params.h:572-573"],
    ["_recipient_limit", "default_recipient_limit", "mail_params.h:815-816"],
    ["_extra_recipient_limit", "default_extra_recipient_limit", "mail_params.h:820-821"],
    ["_recipient_refill_limit", "default_recipient_refill_limit", "mail_params.h:825-826"],
    ["_recipient_refill_delay", "default_recipient_refill_delay", "mail_params.h:830-831"],
    ["_delivery_slot_cost", "default_delivery_slot_cost", "mail_params.h:838-839"],
    ["_delivery_slot_loan", "default_delivery_slot_loan", "mail_params.h:843-844"],
    ["_delivery_slot_discount", "default_delivery_slot_discount", "mail_params.h:848-849"],
    ["_minimum_delivery_slots", "default_minimum_delivery_slots", "mail_params.h:853-854"],
    [
        "_initial_destination_concurrency",
        "initial_destination_concurrency",
        "mail_params.h:865-866",
    ],
    [
        "_destination_concurrency_limit",
        "default_destination_concurrency_limit",
        "mail_params.h:870-871",
    ],
    [
        "_destination_recipient_limit",
        "default_destination_recipient_limit",
        "mail_params.h:882-883",
    ],
    [
        "_destination_concurrency_positive_feedback",
        "default_destination_concurrency_positive_feedback",
        "mail_params.h:3600-3601",
    ],
    [
        "_destination_concurrency_negative_feedback",
        "default_destination_concurrency_negative_feedback",
        "mail_params.h:3605-3606",
    ],
    [
        "_destination_concurrency_failed_cohort_limit",
        "default_destination_concurrency_failed_cohort_limit",
        "mail_params.h:3613-3614",
    ],
    ["_destination_rate_delay", "default_destination_rate_delay", "mail_params.h:3622-3623"],
    ["_transport_rate_delay", "default_transport_rate_delay", "mail_params.h:3627-3628"],
]
#: postconf_service.c:123-163: which rows each program gets: "delivery" = every row
#: but the first, "pipe" = every row, "spawn" = only the first.
#: Legacy "type:name" client parameters ("name_suffix" in main.cf), compiled into
#: postconf with -DLEGACY_DBMS_SUPPORT (src/postconf/Makefile.in:12). The lists are what
#: src/postconf/extract_cfg.sh extracts from src/global/dict_<type>.c
#: (Makefile.in:75-88: "-d" adds "domain", "-s" adds the legacy SQL query fields).
_SQL = ["additional_conditions", "domain", "select_field", "table", "where_field"]
DBMS_SUFFIXES = {
    "ldap": [
        "bind",
        "bind_dn",
        "bind_pw",
        "cache",
        "cache_expiry",
        "cache_size",
        "chase_referrals",
        "debuglevel",
        "dereference",
        "domain",
        "expansion_limit",
        "leaf_result_attribute",
        "query_filter",
        "recursion_limit",
        "result_attribute",
        "result_filter",
        "result_format",
        "sasl_authz_id",
        "sasl_mechs",
        "sasl_minssf",
        "sasl_realm",
        "scope",
        "search_base",
        "server_host",
        "server_port",
        "size_limit",
        "special_result_attribute",
        "start_tls",
        "terminal_result_attribute",
        "timeout",
        "tls_ca_cert_dir",
        "tls_ca_cert_file",
        "tls_cert",
        "tls_cipher_suite",
        "tls_key",
        "tls_random_file",
        "tls_require_cert",
        "version",
    ],
    "memcache": [
        "backup",
        "data_size_limit",
        "domain",
        "flags",
        "key_format",
        "line_size_limit",
        "max_try",
        "memcache",
        "retry_pause",
        "timeout",
        "ttl",
    ],
    "mysql": sorted(
        {
            *_SQL,
            "dbname",
            "expansion_limit",
            "hosts",
            "option_file",
            "option_group",
            "password",
            "query",
            "require_result_set",
            "result_format",
            "tls_CAfile",
            "tls_CApath",
            "tls_cert_file",
            "tls_ciphers",
            "tls_key_file",
            "tls_verify_cert",
            "user",
        }
    ),
    "pgsql": sorted(
        {
            *_SQL,
            "dbname",
            "expansion_limit",
            "hosts",
            "password",
            "query",
            "result_format",
            "select_function",
            "user",
        }
    ),
    "sqlite": sorted({*_SQL, "dbpath", "expansion_limit", "query", "result_format"}),
}
SERVICE_PROGRAMS = {
    "local": "delivery",
    "error": "delivery",
    "virtual": "delivery",
    "smtp": "delivery",
    "lmtp": "delivery",
    "pipe": "pipe",
    "spawn": "spawn",
}


RELEASES = OUTPUT.parent / "releases"
VOLATILE = frozenset({"process_id"})
"""Defaults that differ from run to run, not from release to release."""
CHROOT: list[str] = []
"""``["chroot", DIR]`` when the postconf of a chroot is asked."""


def postconf(config_dir: str, *args: str) -> list[str]:
    """Run postconf -c config_dir ARGS and return its output lines."""
    done = subprocess.run(
        [*CHROOT, "postconf", "-c", config_dir, *args], capture_output=True, check=True, text=True
    )
    return done.stdout.splitlines()


def scratch_dir(chroot: Path | None) -> str | None:
    """Where the scratch configuration goes: in a chroot, below its /tmp, reachable by the
    same path inside (a link named like the chroot's host path leads to its root)."""
    if chroot is None:
        return None
    link = chroot / str(chroot).lstrip("/")
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/")
    return str(chroot / "tmp")


def delta(base: dict[str, object], release: dict[str, object]) -> dict[str, object]:
    """What a release's table changes in the base table (defaults and raw names)."""
    old = base["defaults"]
    new = release["defaults"]
    assert isinstance(old, dict) and isinstance(new, dict)
    raw_old, raw_new = set(base["raw"]), set(release["raw"])  # type: ignore[call-overload]
    return {
        "postfix_version": release["postfix_version"],
        "base": base["postfix_version"],
        "generator": "scripts/gen_postconf_defaults.py --chroot (postconf -d of that release)",
        "added": {k: v for k, v in sorted(new.items()) if k not in old},
        "changed": {
            k: v for k, v in sorted(new.items()) if k in old and old[k] != v and k not in VOLATILE
        },
        "removed": sorted(k for k in old if k not in new),
        "raw_added": sorted(raw_new - raw_old),
        "raw_removed": sorted(raw_old - raw_new),
    }


HOST_NEUTRAL = {"myhostname": "localhost.localdomain", "mydomain": "localdomain"}


def split(line: str) -> tuple[str, str]:
    name, _, value = line.partition(" = ")
    if not _:
        name, value = line.rstrip(" ="), ""
    return name, value


def main() -> int:
    args = sys.argv[1:]
    chroot = None
    if args[:1] == ["--chroot"] and len(args) >= 2:
        chroot = Path(args[1]).resolve()
        CHROOT[:] = ["chroot", str(chroot)]
        args = args[2:]
    target = Path(args[0]) if args else OUTPUT
    with tempfile.TemporaryDirectory(dir=scratch_dir(chroot)) as tmp:
        main_cf = Path(tmp) / "main.cf"
        main_cf.write_text("")
        defaults = dict(split(line) for line in postconf(tmp, "-d"))
        # mynetworks as daemons compute it (not the -d variant); host-specific.
        mynetworks = postconf(tmp, "-h", "mynetworks")[0]
        version = defaults["mail_version"]
        probe_names = [n for n in defaults if n not in READONLY and n != "config_directory"]
        main_cf.write_text("".join(f"{name} = {PROBE}\n" for name in probe_names))
        probed = dict(split(line) for line in postconf(tmp, "-n", "-x"))
    raw = sorted(name for name in probe_names if probed.get(name) == PROBE)
    # Values Postfix computes from the generating machine (its name, its interfaces) are
    # replaced by neutral ones: the table is only a fallback where no postconf runs.
    defaults.update(HOST_NEUTRAL)
    defaults["mynetworks"] = mynetworks = "127.0.0.0/8 [::1]/128"
    document = {
        "postfix_version": version,
        "generator": "scripts/gen_postconf_defaults.py (postconf -d; raw probe with -n -x)",
        "sources": {
            "defaults": "postconf -d",
            "raw": "postconf -n -x leaves these unexpanded (postconf_builtin.c:427-430)",
            "legacy": "src/postconf/postconf_builtin.c:139-154",
            "readonly": "src/postconf/postconf_builtin.c:457-468",
            "service_suffixes": "src/postconf/postconf_service.c:120-199",
            "service_programs": "src/postconf/postconf_service.c:123-163",
            "dbms_suffixes": "src/global/dict_*.c via src/postconf/extract_cfg.sh",
        },
        "defaults": dict(sorted(defaults.items())),
        "mynetworks": mynetworks,
        "raw": raw,
        "legacy": LEGACY,
        "readonly": READONLY,
        "service_suffixes": SERVICE_SUFFIXES,
        "service_programs": SERVICE_PROGRAMS,
        "dbms_suffixes": DBMS_SUFFIXES,
    }
    if chroot is not None:
        base = json.loads(OUTPUT.read_text(encoding="utf-8"))
        document = delta(base, document)
        target = Path(args[0]) if args else RELEASES / f"postconf-defaults-{version}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"{target.name}: Postfix {version}, {len(defaults)} defaults, {len(raw)} raw")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
