"""``regexp:`` and ``pcre:`` table sources: ``/pattern/flags result``, ``!/pattern/``, if/endif.

Follows dict_regexp.c and dict_pcre.c of Postfix 3.7.11 (src/util/): each logical line is
``if PATTERN``, ``endif`` (both keywords case-insensitive, a keyword must not be followed by
a letter or digit), or ``PATTERN result``. A pattern is an optional ``!`` (negation), a
delimiter character (any non-blank, usually ``/``), the expression with backslash escapes,
the same delimiter, and flags up to the next blank. regexp allows a second, negated pattern
``/a/!/b/`` (dict_regexp_get_pats). regexp flags are ``i x m``; pcre flags ``i m s x A E U
X``. A missing result is a warning and means the empty string. Problems (no closing
delimiter, unknown flag, ENDIF without IF, IF without ENDIF, extra text after ENDIF) are
positioned warnings; Postfix skips the rule and goes on.

Inputs: decoded file text and the flavour. Outputs:
:class:`~pfwatch.grammars.table_source.ParsedTable` whose keys are the rule text prefixed by
the enclosing ``if`` patterns (``"/a/ > /b/i"``), made unique with ``#2``, ``#3``...
Errors: none (the regular expression itself is not compiled: POSIX and PCRE syntax are not
Python's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pyparsing as pp

from pfwatch.grammars._tokens import POSTFIX_SPACE, LogicalLine, logical_lines
from pfwatch.grammars.table_source import ParsedTable, Problem, TableEntry

__all__ = ["Flavour", "parse_regexp_table"]

Flavour = Literal["regexp", "pcre"]

#: Flag letters each flavour accepts (dict_regexp.c dict_regexp_get_pat; dict_pcre.c
#: dict_pcre_get_pattern).
FLAGS: dict[str, str] = {"regexp": "ixm", "pcre": "imsxAEUX"}

_KEYWORD_IF = pp.CaselessKeyword("if", ident_chars=pp.alphanums).set_name("IF")
_KEYWORD_ENDIF = pp.CaselessKeyword("endif", ident_chars=pp.alphanums).set_name("ENDIF")
_BLANK = pp.Regex(f"[{POSTFIX_SPACE}]*").set_name("blank")


def _delimited(loc_text: str, start: int) -> int | None:
    """End offset (after the closing delimiter) of the pattern body starting at ``start``."""
    delimiter = loc_text[start]
    index = start + 1
    while index < len(loc_text):
        char = loc_text[index]
        if char == "\\":
            index += 2
            continue
        if char == delimiter:
            return index + 1
        index += 1
    return None


@dataclass(frozen=True, slots=True)
class _Pattern:
    text: str
    end: int
    negated: bool = False
    groups: int = 0


class _RuleError(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def _pattern(text: str, start: int, flavour: Flavour) -> _Pattern:
    index = start
    while index < len(text) and text[index] == "!":
        index += 1
    negated = (index - start) % 2 == 1
    if index >= len(text) or text[index] in POSTFIX_SPACE:
        raise _RuleError(index, "no regexp: skipping this rule")
    end = _delimited(text, index)
    if end is None:
        action = "skipping" if flavour == "regexp" else "ignoring"
        raise _RuleError(index, f'no closing regexp delimiter "{text[index]}": {action} this rule')
    expression = text[index + 1 : end - 1]
    extended = True
    while end < len(text) and text[end] not in POSTFIX_SPACE:
        flag = text[end]
        if flavour == "regexp" and flag == "!" and end + 1 < len(text):
            # dict_regexp_get_pats: "/a/!/b/" also requires that b does NOT match.
            second = _pattern(text, end, flavour)
            groups = capture_groups(expression, flavour, extended=extended)
            return _Pattern(text[start : second.end], second.end, negated, groups)
        if flag not in FLAGS[flavour]:
            raise _RuleError(end, f'unknown regexp option "{flag}": skipping this rule')
        if flag == "x" and flavour == "regexp":
            extended = not extended  # dict_regexp.c: x toggles REG_EXTENDED
        end += 1
    groups = capture_groups(expression, flavour, extended=extended)
    return _Pattern(text[start:end], end, negated, groups)


def capture_groups(expression: str, flavour: Flavour, *, extended: bool = True) -> int:
    """Number of capturing groups (what regcomp's re_nsub / PCRE's capture count say)."""
    count = 0
    index = 0
    in_class = False
    while index < len(expression):
        char = expression[index]
        if in_class:
            if char == "]" and expression[index - 1] not in "[^":
                in_class = False
        elif char == "\\":
            if not extended and expression[index + 1 : index + 2] == "(":
                count += 1
            index += 2
            continue
        elif char == "[":
            in_class = True
            if expression[index + 1 : index + 2] == "^":
                index += 1
            if expression[index + 1 : index + 2] == "]":
                index += 1
        elif char == "(" and extended:
            following = expression[index + 1 : index + 4]
            named = following[1:2] in ("<", "P", "'") and following[2:3] not in ("=", "!")
            if flavour == "regexp" or not following.startswith("?") or named:
                count += 1
        index += 1
    return count


#: ``$N``, ``${N}`` and ``$(N)`` in a result (src/util/mac_parse.c via dict_regexp_prescan).
_REPLACEMENT_INDEX = re.compile(r"\$(?:(\d+)|\{(\d+)\}|\((\d+)\))")


def _replacement_problem(pattern: _Pattern, result: str) -> tuple[int, str] | None:
    text = result.replace("$$", "  ")
    for match in _REPLACEMENT_INDEX.finditer(text):
        number = int(next(group for group in match.groups() if group is not None))
        if pattern.negated:
            return (
                match.start(),
                "$number found in negative match replacement text: skipping this rule",
            )
        if number > pattern.groups:
            return match.start(), f'out of range replacement index "{number}": skipping this rule'
    return None


#: Grammar of the keyword lines; the pattern body is scanned by :func:`_pattern` because
#: its delimiter is chosen per rule.
KEYWORD_LINE = ((_KEYWORD_IF("keyword") + _BLANK) | (_KEYWORD_ENDIF("keyword") + _BLANK)).set_name(
    "if/endif"
)
KEYWORD_LINE.leave_whitespace()
KEYWORD_LINE.parse_with_tabs()  # offsets and values must keep their tabs


def _keyword(text: str) -> tuple[str, int] | None:
    try:
        result, _start, end = next(KEYWORD_LINE.scan_string(text, max_matches=1))
    except StopIteration:
        return None
    if _start != 0:
        return None
    return str(result["keyword"]).lower(), end


def parse_regexp_table(text: str, flavour: Flavour = "regexp") -> ParsedTable:
    """Parse a regexp/pcre table source into ordered rules and positioned problems."""
    lines, warnings = logical_lines(text)
    problems: list[Problem] = list(warnings)
    entries: list[TableEntry] = []
    seen: dict[str, int] = {}
    stack: list[tuple[str, LogicalLine]] = []

    def problem(logical: LogicalLine, offset: int, message: str) -> None:
        line, column = logical.position(min(offset, max(len(logical.text) - 1, 0)))
        problems.append(Problem(line, column, f"{flavour} map: {message}"))

    for logical in lines:
        body = logical.text
        if not body:
            continue  # the line started with NUL: an empty C string
        keyword = _keyword(body)
        try:
            if keyword is not None and keyword[0] == "endif":
                if not stack:
                    problem(logical, 0, "ignoring ENDIF without matching IF")
                    continue
                stack.pop()
                if keyword[1] < len(body):
                    problem(logical, keyword[1], "ignoring extra text after ENDIF")
                continue
            if keyword is not None:
                pattern = _pattern(body, keyword[1], flavour)
                if body[pattern.end :].strip(POSTFIX_SPACE):
                    problem(logical, pattern.end, "ignoring extra text after IF statement")
                stack.append((pattern.text, logical))
                continue
            if body[0].isascii() and body[0].isalnum():
                problem(logical, 0, "ignoring unrecognized request")
                continue
            pattern = _pattern(body, 0, flavour)
        except _RuleError as exc:
            problem(logical, exc.offset, exc.message)
            continue
        result = body[pattern.end :].strip(POSTFIX_SPACE)
        if not result:
            problem(logical, pattern.end, "no replacement text: using empty string")
        bad_replacement = _replacement_problem(pattern, result)
        if bad_replacement is not None:
            offset, message = bad_replacement
            problem(logical, body.find(result, pattern.end) + offset, message)
            continue
        key = " > ".join([*(text for text, _ in stack), pattern.text])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key} #{seen[key]}"
        entries.append(TableEntry(key, result, logical.line))
    for _text, opened in stack:
        problem(opened, 0, "IF has no matching ENDIF")
    problems.sort(key=lambda item: (item.line, item.column))
    return ParsedTable(tuple(entries), tuple(problems))
