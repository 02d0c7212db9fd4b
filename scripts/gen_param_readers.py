#!/usr/bin/env python3
"""Generate pfwatch/knowledge/data/param_readers.json from the team's reference extraction.

Input: the ``postfix-param-readers.json`` file extracted mechanically from the Postfix
3.7.11 source (tag v3.7.11, every ``CONFIG_*_TABLE`` of every daemon, see
postfix-facts.md section 5). Output: our own, smaller JSON with a header naming the
Postfix version and this script, and one row per (daemon, parameter) with the source
location (file:line) where that daemon reads the parameter.

Usage: python scripts/gen_param_readers.py REFERENCE_JSON [OUTPUT_JSON]
Errors: exits non-zero with a one-line message when the input is missing or malformed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "pfwatch/knowledge/data/param_readers.json"


def build(reference: dict[str, Any]) -> dict[str, Any]:
    """Turn the reference extraction into our rows: {daemon: {parameter: "file:line"}}."""
    locations: dict[str, dict[str, str]] = reference["locations"]
    daemons = {
        name: {param: locations[name].get(param, "") for param in sorted(params)}
        for name, params in sorted(reference["daemons"].items())
    }
    dynamic = {
        name: {param: locations.get(f"dynamic:{name}", {}).get(param, "") for param in params}
        for name, params in sorted(reference["dynamic"].items())
    }
    return {
        "_header": {
            "postfix_version": "3.7.11",
            "postfix_source": reference["source"],
            "generated_by": "scripts/gen_param_readers.py",
            "generated_from": "postfix-param-readers.json (team reference extraction)",
            "meaning": (
                "Which daemon reads which main.cf parameter at process start. 'global' is "
                "read by every program (mail_params_init); daemon lists do not repeat it."
            ),
        },
        "global": {p: locations["global"].get(p, "") for p in sorted(reference["global"])},
        "daemons": daemons,
        "dynamic": dynamic,
        "aliases": dict(sorted(reference["aliases"].items())),
    }


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[1])
    target = Path(argv[2]) if len(argv) == 3 else DEFAULT_OUTPUT
    try:
        reference = json.loads(source.read_text(encoding="utf-8"))
        data = build(reference)
    except (OSError, ValueError, KeyError) as exc:
        print(f"gen_param_readers: {source}: {exc}", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {target} ({sum(len(v) for v in data['daemons'].values())} daemon rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
