#!/usr/bin/env python3
"""Generate grammars/maillog_verbose.py: every ``msg_verbose``-guarded ``msg_info`` format.

For each release given, reads every ``src/**/*.c`` file, finds the ``msg_info(...)`` calls
whose controlling condition (the ``if`` right before the call, or the ``if`` that opens its
block) tests ``msg_verbose``, and keeps the format string when it starts with a literal
word. Formats that start with a conversion (``"%s: ..."``, the function-name prefix most
traces carry) or with a ``word:`` are left to the catalogue's hand-written catch-alls
(grammars/maillog_catalogue.py, "-v traces"). Each format becomes a regular expression
(printf conversions to sub-patterns) and a row listing, per release, ``file:line``.

Usage::

    python scripts/gen_verbose_catalogue.py POSTFIX_GIT_DIR v3.5.27 v3.6.20 ... [-o OUT]
    python scripts/gen_verbose_catalogue.py SOURCE_TREE [SOURCE_TREE ...] [-o OUT]

Output: a Python module (default grammars/maillog_verbose.py). Errors: exits non-zero
with the failing path or git command.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from postfix_source import PostfixSource, SourceError, open_source

OUTPUT = Path(__file__).resolve().parents[1] / "grammars" / "maillog_verbose.py"

_CALL = re.compile(r"\bmsg_info\s*\(")
_STRING = re.compile(r'\s*"((?:[^"\\\n]|\\.)*)"', re.S)
_CONVERSION = re.compile(
    r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?:\*|\d+))?"
    r"(?:hh|h|ll|l|L|q|j|z|t)?(?P<conv>[diouxXeEfgGcsSpm%])"
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "0": "\0"}
_SUB = {
    "d": r"-?\d+",
    "i": r"-?\d+",
    "u": r"\d+",
    "o": r"[0-7]+",
    "x": r"(?:0x)?[0-9a-f]+",
    "X": r"(?:0X)?[0-9A-F]+",
    "c": r".",
    "e": r"\S+",
    "E": r"\S+",
    "f": r"\S+",
    "g": r"\S+",
    "G": r"\S+",
    "p": r"\S+",
    "s": r".*?",
    "S": r".*?",
    "m": r".*?",
}
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_FIRST_WORD = re.compile(r"[A-Za-z_<>=`'(\[-][^\s%]*")


def _unescape(literal: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(literal):
        char = literal[i]
        if char == "\\" and i + 1 < len(literal):
            out.append(_ESCAPES.get(literal[i + 1], literal[i + 1]))
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _blank_comments(text: str) -> str:
    """Comments replaced by spaces of the same length (line numbers and offsets stay)."""
    return _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def _statement_start(code: str, pos: int) -> int:
    """Offset just after the ``;``, ``{`` or ``}`` that precedes ``pos``."""
    return max(code.rfind(";", 0, pos), code.rfind("{", 0, pos), code.rfind("}", 0, pos)) + 1


def _enclosing_brace(code: str, pos: int) -> int:
    """Offset of the ``{`` that opens the block containing ``pos`` (-1 at file level)."""
    depth = 0
    for i in range(pos - 1, -1, -1):
        char = code[i]
        if char == "}":
            depth += 1
        elif char == "{":
            if depth == 0:
                return i
            depth -= 1
    return -1


def guarded(code: str, pos: int) -> bool:
    """True when the call at ``pos`` runs only under a condition that tests msg_verbose."""
    if "msg_verbose" in code[_statement_start(code, pos) : pos]:
        return True
    brace = _enclosing_brace(code, pos)
    for _ in range(2):  # the block's own if, and one enclosing level
        if brace < 0:
            return False
        head = code[_statement_start(code, brace) : brace]
        if "msg_verbose" in head:
            return True
        if not re.search(r"\b(?:if|else)\b", head):
            return False
        brace = _enclosing_brace(code, brace)
    return False


_FUNCTION = re.compile(r"^(?:static\s+)?[\w\s*]*?\b(\w+)\s*\([^;{]*?\)\s*\n\{", re.M)


def _functions(code: str) -> list[tuple[str, int, int, bool]]:
    """``(name, body start, body end, static)`` of each definition (Postfix puts its braces
    in column 0)."""
    found = []
    for head in _FUNCTION.finditer(code):
        end = code.find("\n}", head.end())
        static = head.group(0).lstrip().startswith("static")
        found.append((head.group(1), head.end(), len(code) if end < 0 else end, static))
    return found


def _helper_guarded(code: str, pos: int, functions: list[tuple[str, int, int, bool]]) -> bool:
    """True when ``pos`` lies in a static function that is called only under msg_verbose."""
    for name, start, end, static in functions:
        if not static or not start <= pos < end:
            continue
        sites = [
            m.start()
            for m in re.finditer(rf"\b{re.escape(name)}\s*\(", code)
            if not start - len(name) - 200 <= m.start() < end
        ]
        return bool(sites) and all(guarded(code, site) for site in sites)
    return False


def calls(text: str) -> Iterator[tuple[int, str]]:
    """``(line, format)`` of every msg_verbose-guarded msg_info call with a literal format
    (a call in a static helper that runs only under msg_verbose counts as guarded)."""
    code = _blank_comments(text)
    functions = _functions(code)
    for found in _CALL.finditer(code):
        pos = found.end()
        pieces: list[str] = []
        while (literal := _STRING.match(code, pos)) is not None:
            pieces.append(literal.group(1))
            pos = literal.end()
        if not pieces:
            continue
        fmt = _unescape("".join(pieces))
        # "%s TLS level: %s", "global", ...: a literal first argument is part of the text
        argument = re.match(r'\s*,\s*"((?:[^"\\\n]|\\.)*)"\s*[,)]', code[pos:])
        if fmt.startswith("%s") and argument is not None:
            fmt = _unescape(argument.group(1)).replace("%", "%%") + fmt[2:]
        if not (guarded(code, found.start()) or _helper_guarded(code, found.start(), functions)):
            continue
        yield code.count("\n", 0, found.start()) + 1, fmt


def first_word(fmt: str) -> str | None:
    """The literal first word when the format starts with one the catch-alls do not cover;
    ``""`` when the first word is a literal of two letters or more and then a conversion
    (``fd=%d:``: such rows are tried after the word lookup)."""
    word = fmt.split(" ", 1)[0]
    if re.match(r"[A-Za-z_]{2,}[^%\s]*%", word) and not re.match(r"[a-z][\w.-]*: ", fmt):
        return ""
    if not word or "%" in word or not _FIRST_WORD.fullmatch(word) or word.endswith(":"):
        return None
    if fmt == word or not re.search(r"[A-Za-z]{2}", word):
        return None
    return word


def to_regex(fmt: str) -> str:
    """A regular expression matching what ``fmt`` prints (matched at the message start)."""
    out: list[str] = []
    pos = 0
    for conv in _CONVERSION.finditer(fmt):
        out.append(_literal(fmt[pos : conv.start()]))
        padded = conv["width"] and "-" not in conv["flags"]
        out.append("%" if conv["conv"] == "%" else (" *" if padded else "") + _SUB[conv["conv"]])
        pos = conv.end()
    tail = fmt[pos:]
    out.append(_literal(tail))
    pattern = "".join(out)
    if pattern.endswith(".*?"):
        pattern = pattern[:-1]
    return pattern


_META = frozenset(".^$*+?{}[]\\|()")


def _literal(text: str) -> str:
    # Postfix logs control characters as "?" (src/util/msg_output.c: printable())
    return "".join("." if not ch.isprintable() else "\\" + ch if ch in _META else ch for ch in text)


def collect(source: PostfixSource) -> tuple[str, dict[str, str]]:
    """The release's version and ``{format: "file:line"}`` (first site of each format)."""
    version = source.version()
    found: dict[str, str] = {}
    # the default queue manager's sites before oqmgr's (same formats, both directories)
    paths = sorted(source.files("src/", ".c"), key=lambda p: (p.startswith("src/oqmgr/"), p))
    for path, text in source.read_many(paths):
        for line, fmt in calls(text):
            if first_word(fmt) is not None:
                found.setdefault(fmt, f"{path}:{line}")
    return version, found


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _quoted(text: str) -> str:
    """A double-quoted Python literal (ruff format's quote style)."""
    return json.dumps(text, ensure_ascii=False)


def render(per_release: dict[str, dict[str, str]]) -> str:
    versions = sorted(per_release, key=_key)
    formats: dict[str, dict[str, str]] = {}
    for version in versions:
        for fmt, site in per_release[version].items():
            formats.setdefault(fmt, {})[version] = site
    lines = [
        "# ruff: noqa: E501",
        '"""Generated by scripts/gen_verbose_catalogue.py from the Postfix source: do not edit.',
        "",
        "The ``msg_verbose``-guarded ``msg_info`` formats that start with a literal word, of",
        "Postfix " + ", ".join(versions) + ",",
        "as (first word, regex, printf format, sites); each site is ``release=file:line``, one",
        "per release that has the format. Consumed by :mod:`grammars.maillog_catalogue`.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "RELEASES = (" + ", ".join(_quoted(v) for v in versions) + ")",
        "",
        "FORMATS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (",
    ]
    ordered = sorted(formats.items(), key=lambda item: (first_word(item[0]) or "", item[0]))
    for fmt, sites in ordered:
        word = first_word(fmt)
        assert word is not None
        lines.append("    (")
        lines.extend(f"        {_quoted(text)}," for text in (word, to_regex(fmt), fmt))
        lines.append("        (")
        lines.extend(f"            {_quoted(f'{v}={site}')}," for v, site in sites.items())
        lines.append("        ),")
        lines.append("    ),")
    lines.append(")")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a Postfix git directory or source tree")
    parser.add_argument("tags", nargs="*", help="release tags (git) or more source trees")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv[1:])
    try:
        if args.tags and not Path(args.tags[0]).exists():
            sources = [open_source(args.source, tag) for tag in args.tags]
        else:
            sources = [open_source(location) for location in (args.source, *args.tags)]
        per_release = dict(collect(source) for source in sources)
    except SourceError as exc:
        print(f"gen_verbose_catalogue: {exc}", file=sys.stderr)
        return 1
    args.output.write_text(render(per_release), encoding="utf-8")
    # the project's formatter has the last word on layout (quotes, short tuples)
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(args.output)], check=False)
    total = len({fmt for found in per_release.values() for fmt in found})
    print(f"wrote {args.output}: {total} formats from {', '.join(per_release)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
