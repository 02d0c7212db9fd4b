#!/usr/bin/env python3
"""Where each hand-written maillog catalogue row's message is in every release's source.

The rows of grammars/maillog_catalogue.py cite the Postfix 3.7.11 line that logs them. For
each row this script takes the format text at that line (the first string literal there,
or the words after ``$INFO``/``$WARN``/``$FATAL`` in conf/postfix-script) and finds it in
each release's source: in the same file first (the occurrence nearest the cited line), else
in any file of src/. Output: ``pfwatch/knowledge/data/releases/catalogue-sites.json``,
``{row: {"text": ..., "sites": {release: "file:line" or null}}}`` with ``row`` =
``kind@file:line``; null means that release does not log the message.

Usage: python scripts/gen_catalogue_sites.py POSTFIX_GIT_DIR v3.5.27 v3.6.20 ... [--base v3.7.11]
Errors: exits non-zero with the failing git command or path.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from postfix_source import PostfixSource, SourceError, open_source

from grammars.maillog_catalogue import CATALOGUE
from grammars.maillog_verbose import FORMATS

OUTPUT = (
    Path(__file__).resolve().parents[1]
    / "pfwatch"
    / "knowledge"
    / "data"
    / "releases"
    / "catalogue-sites.json"
)
_LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_SCRIPT = re.compile(r"\$(?:INFO|WARN|FATAL)\s+(.*?)(?:\s*\|\||$)")


def anchor(lines: list[str], number: int) -> str | None:
    """The message text logged at ``number`` (1-based), or None."""
    text = " ".join(lines[number - 1 : number + 2])
    script = _SCRIPT.search(lines[number - 1])
    if script is not None:
        return script.group(1).split("`", 1)[0].strip()
    found = _LITERAL.search(text)
    return found.group(1) if found is not None and len(found.group(1)) >= 6 else None


def locate(text: str, path: str, line: int, files: dict[str, list[str]]) -> str | None:
    """``file:line`` of ``text`` in the release (same file, nearest to ``line``; else any)."""
    own = files.get(path) or []
    hits = [n for n, row in enumerate(own, 1) if text in row]
    if hits:
        return f"{path}:{min(hits, key=lambda n: abs(n - line))}"
    for other, rows in files.items():
        for n, row in enumerate(rows, 1):
            if text in row:
                return f"{other}:{n}"
    return None


def _files(source: PostfixSource) -> dict[str, list[str]]:
    paths = [*source.files("src/", ".c"), "conf/postfix-script"]
    return {path: text.splitlines() for path, text in source.read_many(paths)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("git_dir")
    parser.add_argument("tags", nargs="+")
    parser.add_argument("--base", default="v3.7.11")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv[1:])
    try:
        base = _files(open_source(args.git_dir, args.base))
        releases = {}
        for tag in args.tags:
            source = open_source(args.git_dir, tag)
            releases[source.version()] = _files(source)
    except SourceError as exc:
        print(f"gen_catalogue_sites: {exc}", file=sys.stderr)
        return 1
    hand = CATALOGUE[: len(CATALOGUE) - len(FORMATS)]
    rows: dict[str, object] = {}
    for row in hand:
        path, _, number = row.source.rpartition(":")
        text = anchor(base.get(path, []), int(number))
        if text is None:
            continue
        sites = {
            version: locate(text, path, int(number), files) for version, files in releases.items()
        }
        rows[f"{row.kind}@{row.source}"] = {"text": text, "sites": sites}
    document = {
        "generator": "scripts/gen_catalogue_sites.py",
        "base": args.base.lstrip("v"),
        "releases": list(releases),
        "rows": rows,
    }
    args.output.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    absent = sum(site is None for r in rows.values() for site in r["sites"].values())  # type: ignore[index]
    print(f"wrote {args.output.name}: {len(rows)} of {len(hand)} rows, {absent} absences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
