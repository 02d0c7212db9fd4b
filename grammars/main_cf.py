"""Grammar of main.cf: ``name = value`` logical lines, as Postfix's split_nameval() reads them.

Postfix loads main.cf with dict_load_fp() (src/util/dict.c:472-510): each logical line
(see :mod:`pfwatch.grammars._tokens`) is split by split_nameval()
(src/util/split_nameval.c:61-97): the name is everything up to whitespace or ``=``, then
``=``, then the value with surrounding whitespace trimmed. ``{ ... }`` in a value is plain
text to main.cf (only table and ``-o`` readers strip it), and ``$`` expansions are parsed
later (:mod:`pfwatch.grammars.expansion`). A line without ``=`` is fatal to Postfix
("missing '=' after attribute name"), so it is an error here; a later assignment to the
same name wins, with a warning (dict.c:502-505).

Inputs: decoded file text. Outputs: :class:`Assignment` records and warnings.
Errors: :class:`MainCfSyntaxError` with 1-based line and column.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyparsing as pp

from pfwatch.grammars._tokens import POSTFIX_SPACE, LogicalLine, Warning_, logical_lines

#: Every rule of this grammar; each needs an annotated sample in samples/main_cf/.
RULES: dict[str, str] = {
    "assignment": "name = value (split_nameval.c:83-97)",
    "empty_value": "name = with nothing after it",
    "continuation": "a line starting with blanks continues the previous one (readlline.c:110-116)",
    "comment_inside_continuation": "comment lines are dropped, even inside a logical line",
    "blank_line_inside_continuation": "blank lines are dropped, even inside a logical line",
    "braced_value": "{ ... } is plain text in main.cf",
    "trailing_blanks_trimmed": "blanks around the value are trimmed (split_nameval.c:92-93)",
    "odd_name": "a name is anything up to blanks or '=' (split_nameval.c:86)",
    "duplicate": "the last assignment wins, with a warning (dict.c:502-505)",
    "leading_whitespace_skipped": "a leading-blank first line is skipped (readlline.c:126-132)",
    "non_utf8": "bytes that are not UTF-8 are kept as they are",
    "missing_equals": "error: missing '=' after attribute name (split_nameval.c:88-89)",
    "missing_name": "error: missing attribute name (split_nameval.c:84-85)",
}

_WS = pp.Regex(r"[ \t\n\r\v\f]+").suppress()

#: ``name = value``: the name runs to whitespace or ``=`` (split_nameval.c:83-89).
NAME = pp.Regex(r"[^ \t\n\r\v\f=]+")("name")
EQUALS = pp.Literal("=")("equals")
VALUE = pp.Regex(r"[\s\S]*")("value")
ASSIGNMENT = pp.Opt(_WS) + NAME + pp.Opt(_WS) + EQUALS + VALUE
ASSIGNMENT.leave_whitespace()
for _element in (NAME, EQUALS, VALUE):
    _element.leave_whitespace()
ASSIGNMENT.parse_with_tabs()


class MainCfSyntaxError(Exception):
    """A logical line Postfix would reject; positions are 1-based file coordinates."""

    def __init__(self, line: int, column: int, message: str) -> None:
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"line {line}, column {column}: {message}")


@dataclass(frozen=True, slots=True)
class Assignment:
    """One ``name = value`` logical line (value trimmed as split_nameval() trims it)."""

    name: str
    value: str
    line: int
    column: int
    #: Where the (trimmed) value starts in the logical line's text.
    value_offset: int = 0


def parse_assignment(logical: LogicalLine) -> Assignment:
    """Parse one logical line; raise :class:`MainCfSyntaxError` where Postfix would fail."""
    text = logical.text
    try:
        result = ASSIGNMENT.parse_string(text, parse_all=True)
    except pp.ParseException as exc:
        start = len(text) - len(text.lstrip(POSTFIX_SPACE))
        if start >= len(text) or text[start] == "=":
            line, column = logical.position(start)
            raise MainCfSyntaxError(line, column, "missing attribute name") from None
        line, column = logical.position(max(exc.loc, start))
        raise MainCfSyntaxError(line, column, "missing '=' after attribute name") from None
    name = str(result["name"])
    name_offset = text.index(name)
    value = str(result["value"]).strip(POSTFIX_SPACE)
    value_offset = text.index("=", name_offset + len(name)) + 1
    while value_offset < len(text) and text[value_offset] in POSTFIX_SPACE:
        value_offset += 1
    line, column = logical.position(name_offset)
    return Assignment(name, value, line, column, value_offset)


def parse(text: str) -> tuple[list[Assignment], list[Warning_]]:
    """Parse a whole main.cf text into assignments in file order, plus warnings."""
    lines, warnings = logical_lines(text)
    return [parse_assignment(logical) for logical in lines], warnings
