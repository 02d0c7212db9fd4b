"""Grammar of ``$name`` expansions in Postfix parameter values (Postfix 3.7.11).

Two levels, as in Postfix:

1. :func:`split_value` is mac_parse() (src/util/mac_parse.c:84-140): a value is literal
   text and references. ``$$`` is a literal ``$``; ``$name`` takes ``[A-Za-z0-9_]+``;
   ``${...}`` and ``$(...)`` take everything up to the balancing ``}`` or ``)`` (only the
   same bracket kind nests). An unbalanced bracket ("truncated macro reference") or a
   ``$`` with no name ("empty macro name") is an error.
2. :func:`parse_body` is the body syntax of mac_expand_callback()
   (src/util/mac_expand.c:560-700): ``name``, ``name?text``, ``name:text``,
   ``name?{t}:{f}`` (``{}`` optional, blanks around ``{}`` ignored) and the relational
   form ``{a} OP {b}`` with OP one of ``== != < <= >= >`` (mac_expand.c:265-275, 389-468),
   optionally followed by ``?``/``:`` results. Branch texts stay unparsed: Postfix parses
   only the branch it takes (mac_expand.c:640-666).

Inputs: a value string. Outputs: :class:`Literal`/:class:`Reference` tokens and
:class:`Body` records. Errors: :class:`ExpansionSyntaxError` carrying the offset in the
value and Postfix's message.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyparsing as pp
from pfwatch.grammars._tokens import Balanced

#: CHARS_SPACE of src/util/stringops.h, used by mac_expand as its blank set.
SPACE = " \t\r\n"
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
RELATIONAL_OPERATORS = ("==", "!=", "<", "<=", ">=", ">")
_OPERATOR_CHARS = "<>!=?+-*/~&|%"  # mac_expand.c:328, scanned for better diagnostics


class ExpansionSyntaxError(Exception):
    """An expansion Postfix rejects ("macro processing error"); offset is 0-based."""

    def __init__(self, offset: int, message: str) -> None:
        self.offset = offset
        self.message = message
        super().__init__(f"offset {offset}: {message}")


@dataclass(frozen=True, slots=True)
class Literal:
    """Literal text (``$$`` already turned into ``$``)."""

    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class Reference:
    """A ``$name``/``${body}``/``$(body)`` reference; ``body`` is the text inside."""

    body: str
    offset: int
    braced: bool


def _literal(s: str, loc: int, toks: pp.ParseResults) -> Literal:
    text = str(toks[0])
    return Literal("$" if text == "$$" else text, loc)


def _reference(s: str, loc: int, toks: pp.ParseResults) -> Reference:
    text = str(toks[0])
    if text[1] in "{(":
        return Reference(text[2:-1], loc, True)
    return Reference(text[1:], loc, False)


LITERAL = (pp.Literal("$$") | pp.Regex(r"[^$]+")).set_parse_action(_literal)
REFERENCE = pp.Combine(
    pp.Literal("$") + (Balanced("{", "}") | Balanced("(", ")") | pp.Word(NAME_CHARS))
).set_parse_action(_reference)
VALUE = pp.ZeroOrMore(LITERAL | REFERENCE)
for _element in (LITERAL, REFERENCE, VALUE):
    _element.leave_whitespace()
VALUE.parse_with_tabs()


def split_value(value: str) -> list[Literal | Reference]:
    """mac_parse(): literal runs and references, or :class:`ExpansionSyntaxError`."""
    result = VALUE.parse_string(value, parse_all=False)
    tokens: list[Literal | Reference] = list(result)
    consumed = _consumed(value, tokens)
    if consumed < len(value):
        # Only a bad "$..." stops the grammar (a literal run matches anything else).
        if value[consumed + 1 : consumed + 2] in ("{", "("):
            raise ExpansionSyntaxError(consumed, "truncated macro reference")
        raise ExpansionSyntaxError(consumed, "empty macro name")
    for token in tokens:
        if isinstance(token, Reference) and token.body == "":
            raise ExpansionSyntaxError(token.offset, "empty macro name")
    return tokens


def _consumed(value: str, tokens: list[Literal | Reference]) -> int:
    """Offset just past the last token."""
    if not tokens:
        return 0
    last = tokens[-1]
    if isinstance(last, Literal):
        return last.offset + (2 if value.startswith("$$", last.offset) else len(last.text))
    return last.offset + 1 + len(last.body) + (2 if last.braced else 0)


@dataclass(frozen=True, slots=True)
class Body:
    """A parsed ``${...}`` body.

    ``name`` is set for the named form, ``left``/``operator``/``right`` for the
    relational form. ``condition`` is ``None`` (plain use), ``"?"`` or ``":"``;
    ``if_true``/``if_false`` are the unparsed branch texts (``None`` when absent).
    """

    name: str | None
    left: str | None
    operator: str | None
    right: str | None
    condition: str | None
    if_true: str | None
    if_false: str | None


def _curly_at(text: str, pos: int) -> int | None:
    """MAC_EXP_FIND_LEFT_CURLY: position of ``{`` after blanks, or None."""
    index = pos
    while index < len(text) and text[index] in SPACE:
        index += 1
    return index if index < len(text) and text[index] == "{" else None


def _curly_payload(text: str, pos: int) -> tuple[str, int]:
    """mac_exp_extract_curly_payload(): ``{payload}`` at pos, blanks after it skipped."""
    depth = 0
    for index in range(pos, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                after = index + 1
                while after < len(text) and text[after] in SPACE:
                    after += 1
                return text[pos + 1 : index], after
    raise ExpansionSyntaxError(pos, f'unbalanced {{}} in attribute expression: "{text[pos:]}"')


def _branches(body: str, pos: int, condition: str) -> tuple[str | None, str | None]:
    """The ``?``/``:`` result operands starting at ``pos`` (mac_expand.c:640-680)."""
    if_true: str | None = None
    if condition == "?":
        start = _curly_at(body, pos)
        if start is None:
            return body[pos:], None
        if_true, pos = _curly_payload(body, start)
        if pos == len(body):
            return if_true, None
        if body[pos] != ":":
            raise ExpansionSyntaxError(pos, f'":" expected at: "...{if_true}}}>>>{body[pos:]}"')
        pos += 1
    start = _curly_at(body, pos)
    if start is None:
        return if_true, body[pos:]
    if_false, pos = _curly_payload(body, start)
    if pos != len(body):
        raise ExpansionSyntaxError(pos, f'unexpected input at: "...{if_false}}}>>>{body[pos:]}"')
    return if_true, if_false


def parse_body(body: str) -> Body:
    """Parse the text inside ``${...}`` as mac_expand_callback() does."""
    start = _curly_at(body, 0)
    if start is not None:
        left, pos = _curly_payload(body, start)
        op_end = pos
        while op_end < len(body) and body[op_end] in _OPERATOR_CHARS:
            op_end += 1
        operator = body[pos:op_end]
        if operator not in RELATIONAL_OPERATORS:
            raise ExpansionSyntaxError(
                pos, f'"==" or "!=" or "<" or "<=" or ">=" or ">" expected at: "{body[pos:]}"'
            )
        right_at = _curly_at(body, op_end)
        if right_at is None:
            raise ExpansionSyntaxError(op_end, '"{expression}" expected')
        right, pos = _curly_payload(body, right_at)
        if pos == len(body):
            return Body(None, left, operator, right, None, None, None)
        if body[pos] not in "?:":
            raise ExpansionSyntaxError(pos, f'"?" or ":" expected at: "...}}>>>{body[pos:]}"')
        if_true, if_false = _branches(body, pos + 1, body[pos])
        return Body(None, left, operator, right, body[pos], if_true, if_false)
    pos = 0
    while pos < len(body) and body[pos] in SPACE:
        pos += 1
    name_start = pos
    while True:
        after = pos
        while after < len(body) and body[after] in SPACE:
            after += 1
        if after == len(body):
            return Body(body[name_start:pos], None, None, None, None, None, None)
        if body[after] in "?:":
            if_true, if_false = _branches(body, after + 1, body[after])
            return Body(body[name_start:pos], None, None, None, body[after], if_true, if_false)
        if body[pos] not in NAME_CHARS:
            raise ExpansionSyntaxError(pos, f'attribute name syntax error at: "{body[pos:]}"')
        pos += 1
