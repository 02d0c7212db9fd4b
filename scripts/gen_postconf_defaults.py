#!/usr/bin/env python3
"""Regenerate pfwatch/knowledge/data/postconf-defaults.json from the installed Postfix.

Runs ``postconf -d`` (defaults of every built-in parameter) in an empty private
configuration directory, then probes which parameters postconf never expands (the
CONFIG_RAW_TABLE ones, src/postconf/postconf_builtin.c:116-119, 427-430): it sets every
parameter to ``$process_name`` and asks ``postconf -n -x``; raw ones come back
unexpanded. Legacy and read-only names are Postfix source facts, cited in the output.

Usage: ``python scripts/gen_postconf_defaults.py [OUTPUT]`` (default: the shipped path).
Needs: Postfix's ``postconf`` on PATH. Errors: exits non-zero with postconf's message.
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


def postconf(config_dir: str, *args: str) -> list[str]:
    """Run postconf -c config_dir ARGS and return its output lines."""
    done = subprocess.run(
        ["postconf", "-c", config_dir, *args], capture_output=True, check=True, text=True
    )
    return done.stdout.splitlines()


def split(line: str) -> tuple[str, str]:
    name, _, value = line.partition(" = ")
    if not _:
        name, value = line.rstrip(" ="), ""
    return name, value


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    with tempfile.TemporaryDirectory() as tmp:
        main_cf = Path(tmp) / "main.cf"
        main_cf.write_text("")
        defaults = dict(split(line) for line in postconf(tmp, "-d"))
        version = defaults["mail_version"]
        probe_names = [n for n in defaults if n not in READONLY and n != "config_directory"]
        main_cf.write_text("".join(f"{name} = {PROBE}\n" for name in probe_names))
        probed = dict(split(line) for line in postconf(tmp, "-n", "-x"))
    raw = sorted(name for name in probe_names if probed.get(name) == PROBE)
    document = {
        "postfix_version": version,
        "generator": "scripts/gen_postconf_defaults.py (postconf -d; raw probe with -n -x)",
        "sources": {
            "defaults": "postconf -d",
            "raw": "postconf -n -x leaves these unexpanded (postconf_builtin.c:427-430)",
            "legacy": "src/postconf/postconf_builtin.c:139-154",
            "readonly": "src/postconf/postconf_builtin.c:457-468",
        },
        "defaults": dict(sorted(defaults.items())),
        "raw": raw,
        "legacy": LEGACY,
        "readonly": READONLY,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"{target.name}: Postfix {version}, {len(defaults)} defaults, {len(raw)} raw")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
