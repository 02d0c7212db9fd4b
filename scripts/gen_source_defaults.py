#!/usr/bin/env python3
"""Parameter defaults of a release without its binaries: the source's difference, applied.

Where no postconf of a release can run (no Debian package of 3.6, 3.8 or 3.9), its defaults
are predicted from source: every ``VAR_X, DEF_X, ...`` entry of every ``CONFIG_*_TABLE`` is
read from the release and from the base release (3.7.11) with the same rules (``DEF_X``
resolved through the headers' string and number macros; 0/1 in boolean tables as no/yes),
and what differs (names added or removed, defaults changed) is applied to the base table
that postconf -d gave. ``--check VERSION`` predicts a release that does have a postconf
table (3.5.25, 3.10.13) and prints how far the prediction agrees with it.

Usage::

    python scripts/gen_source_defaults.py POSTFIX_GIT_DIR v3.6.20 v3.8.20 v3.9.14
    python scripts/gen_source_defaults.py POSTFIX_GIT_DIR v3.10.13 --check 3.10.13

Output: ``pfwatch/knowledge/data/releases/postconf-defaults-<version>.json`` (the same
delta form as scripts/gen_postconf_defaults.py --chroot, marked as predicted from source).
Errors: exits non-zero with the failing git command or path.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_release_readers import _DEFINE, _TOKEN
from postfix_source import PostfixSource, SourceError, open_source

DATA = Path(__file__).resolve().parents[1] / "pfwatch" / "knowledge" / "data"
_TABLE = re.compile(r"\bCONFIG_(\w+?)_TABLE\s+\w+\s*\[\]\s*=\s*\{(.*?)\n\s*\};", re.S)
_PAIR = re.compile(r"^\s*(VAR_\w+)\s*,\s*(DEF_\w+)\s*,", re.M)
_NUMBER = re.compile(r"\(?\s*(-?\d+)\s*[LlUu]*\s*\)?")


def _macros(source: PostfixSource) -> dict[str, str]:
    raw: dict[str, str] = {}
    for _, text in source.read_many(source.files("src/", ".h")):
        joined = re.sub(r"\\\n[ \t]*", " ", text)  # continuation lines
        for macro, body in _DEFINE.findall(joined):
            raw.setdefault(macro, body)
    return raw


def _value(raw: dict[str, str], macro: str, depth: int = 0) -> str | None:
    """A macro as the C compiler sees it: concatenated strings, or a plain number."""
    body = raw.get(macro)
    if body is None or depth > 10:
        return None
    number = _NUMBER.fullmatch(body)
    if number is not None:
        return number.group(1)
    pieces = []
    for literal, name in _TOKEN.findall(body):
        piece = literal if name == "" else _value(raw, name, depth + 1)
        if piece is None:
            return None
        pieces.append(piece)
    return "".join(pieces)


def defaults(source: PostfixSource) -> tuple[set[str], dict[str, str]]:
    """Every parameter of a table entry, and ``{parameter: default}`` where the macros
    resolve the default."""
    raw = _macros(source)
    found: dict[str, str] = {}
    names: set[str] = set()
    for _, text in source.read_many(source.files("src/", ".c")):
        for table in _TABLE.finditer(text):
            kind = table.group(1)
            for var, default in _PAIR.findall(table.group(2)):
                name = _value(raw, var)
                value = _value(raw, default)
                if name:
                    names.add(name)
                if not name or value is None or name in found:
                    continue
                if kind in ("BOOL", "NBOOL") and value in ("0", "1"):
                    value = "yes" if value == "1" else "no"
                found[name] = value
    return names, found


Extracted = tuple[set[str], dict[str, str]]


def predict(base_table: dict[str, str], base: Extracted, release: Extracted) -> dict[str, str]:
    """The base table, less the names the release lacks, plus its new names and changed
    defaults (a default the macros do not resolve stays the base's)."""
    (base_names, base_values), (names, values) = base, release
    table = dict(base_table)
    for name in base_names - names:
        table.pop(name, None)
    for name, value in values.items():
        if name not in base_names or (name in base_values and base_values[name] != value):
            table[name] = value
    return table


def _release_table(version: str) -> dict[str, str]:
    base = json.loads((DATA / "postconf-defaults.json").read_text(encoding="utf-8"))
    table: dict[str, str] = dict(base["defaults"])
    if version == base["postfix_version"]:
        return table
    delta = json.loads((DATA / "releases" / f"postconf-defaults-{version}.json").read_text())
    for name in delta["removed"]:
        table.pop(name, None)
    table.update(delta["added"])
    table.update(delta["changed"])
    return table


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("git_dir")
    parser.add_argument("tags", nargs="+")
    parser.add_argument("--base", default="v3.7.11")
    parser.add_argument("--check", metavar="VERSION", help="compare with a shipped table")
    args = parser.parse_args(argv[1:])
    try:
        base_source = open_source(args.git_dir, args.base)
        base_version = base_source.version()
        base_src = defaults(base_source)
        base_table = _release_table(base_version)
        for tag in args.tags:
            source = open_source(args.git_dir, tag)
            version = source.version()
            predicted = predict(base_table, base_src, defaults(source))
            predicted["mail_version"] = version
            if args.check:
                actual = _release_table(args.check)
                names = set(actual) | set(predicted)
                same = [n for n in names if actual.get(n) == predicted.get(n)]
                wrong = sorted(n for n in names if actual.get(n) != predicted.get(n))
                print(f"{tag} predicted vs {args.check} (postconf -d): {len(same)}/{len(names)}")
                for name in wrong[:40]:
                    print(
                        f"  {name}: predicted {predicted.get(name)!r} actual {actual.get(name)!r}"
                    )
                continue
            document = {
                "postfix_version": version,
                "base": base_version,
                "generator": "scripts/gen_source_defaults.py (predicted from source: "
                f"the difference between {tag} and {args.base} applied to the base table)",
                "added": {k: v for k, v in sorted(predicted.items()) if k not in base_table},
                "changed": {
                    k: v
                    for k, v in sorted(predicted.items())
                    if k in base_table and base_table[k] != v
                },
                "removed": sorted(k for k in base_table if k not in predicted),
                "raw_added": [],
                "raw_removed": [],
            }
            target = DATA / "releases" / f"postconf-defaults-{version}.json"
            target.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
            print(
                f"wrote {target.name}: +{len(document['added'])} ~{len(document['changed'])} "
                f"-{len(document['removed'])}"
            )
    except (SourceError, OSError, ValueError, KeyError) as exc:
        print(f"gen_source_defaults: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
