"""Grammar of ``$name`` expansions in Postfix parameter values (Postfix 3.7.11).

Two levels, as in Postfix:

1. :func:`split_value` is mac_parse() (src/util/mac_parse.c:85-160): a value is literal
   text and references. ``$$`` is a literal ``$``; ``$name`` takes ``[A-Za-z0-9_]+``;
   ``${...}`` and ``$(...)`` take everything up to the balancing ``}`` or ``)`` (only the
   same bracket kind nests). An unbalanced bracket ("truncated macro reference") or a
   ``$`` with no name ("empty macro name") is an error.
2. :func:`parse_body` is the body syntax of mac_expand_callback()
   (src/util/mac_expand.c:540-706): ``name``, ``name?text``, ``name:text``,
   ``name?{t}:{f}`` (``{}`` optional, blanks around ``{}`` ignored) and the relational
   form ``{a} OP {b}`` with OP one of ``== != < <= >= >`` (mac_expand.c:245-253, 398-503),
   optionally followed by ``?``/``:`` results. Branch texts stay unparsed: Postfix parses
   only the branch it takes (mac_expand.c:639-672).

Inputs: a value string. Outputs: :class:`Literal`/:class:`Reference` tokens and
:class:`Body` records. Errors: :class:`ExpansionSyntaxError` carrying the offset in the
value and Postfix's message.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyparsing as pp

from pfwatch.grammars._tokens import Balanced

#: CHARS_SPACE of src/util/stringops.h, used by mac_expand as its blank set.
SPACE = " \t\r\n"
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
RELATIONAL_OPERATORS = ("==", "!=", "<", "<=", ">=", ">")
#: Operator suffixes registered with mac_expand_add_relop(): "level" compares
#: compatibility levels (src/global/compat_level.c:305-317; registered by postconf at
#: src/postconf/postconf.c:946 and by every daemon at src/global/mail_params.c:881).
OPERATOR_SUFFIXES = ("level",)
_OPERATOR_CHARS = "<>!=?+-*/~&|%"  # mac_expand.c:427, scanned for better diagnostics


#: Every rule of this grammar; each needs an annotated sample in samples/main_cf/.
RULES: dict[str, str] = {
    "dollar_name": "$name (mac_parse.c:135-139)",
    "braced_name": "${name} (mac_parse.c:112-134)",
    "paren_name": "$(name), the legacy form of ${name}",
    "dollar_dollar": "$$ is a literal $ (mac_parse.c:109-111)",
    "undefined_name": "an unknown, unset name expands to nothing",
    "default_value": "an unset known parameter expands to its default",
    "recursive": "values are expanded recursively (MAC_EXP_FLAG_RECURSE)",
    "if_set_text": "${name?text} (mac_expand.c:639-656)",
    "if_unset_text": "${name:text} (mac_expand.c:657-672)",
    "if_set_braced": "${name?{text}}, blanks around {} ignored",
    "if_unset_braced": "${name:{text}}",
    "ternary": "${name?{t}:{f}}",
    "relational_eq": "${{a} == {b}?...} (mac_expand.c:245-253)",
    "relational_ne": "!=",
    "relational_lt": "<, numeric when both sides are all digits (mac_expand.c:286-318)",
    "relational_le": "<=, strcmp() otherwise",
    "relational_gt": ">",
    "relational_ge": ">=",
    "relational_value": "${{a} == {b}} alone is 'true' or empty (mac_expand.c:224-225)",
    "relational_level": "<level etc. compare compatibility levels (compat_level.c:262-317)",
    "relational_if_unset": "${{a} == {b}:text}",
    "legacy_conditional_text": "${name?text} text may hold ?, : and {} (mac_expand.c:335-350)",
    "truncated_reference": "error: truncated macro reference (mac_parse.c:120-124)",
    "empty_name": "error: empty macro name (mac_parse.c:140-144)",
    "bad_name_syntax": "error: attribute name syntax error (mac_expand.c:612-616)",
    "bad_operator": "error: unknown relational operator (mac_expand.c:430-433)",
    "bad_operator_suffix": "error: bad operator suffix (mac_expand.c:438-451)",
    "unbalanced_braces": "error: unbalanced {} (mac_expand.c:363-392)",
    "garbage_after_result": "error: unexpected input after a result (mac_expand.c:668-671)",
    "nesting_limit": "error: unreasonable macro call nesting (mac_expand.c:556-558)",
    "bad_level": "error: malformed compatibility level (compat_level.c:186-188)",
}


class ExpansionSyntaxError(Exception):
    """An expansion Postfix rejects ("macro processing error").

    ``offset`` is 0-based inside ``source`` (the value that holds the problem, when known).
    """

    def __init__(self, offset: int, message: str, source: str | None = None) -> None:
        self.offset = offset
        self.message = message
        self.source = source
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


@functools.lru_cache(maxsize=65536)
def scan_tokens(
    value: str,
) -> tuple[tuple[Literal | Reference, ...], ExpansionSyntaxError | None]:
    """mac_parse(): the tokens before the first error, and that error (or None).

    Postfix handles each token as it is found and stops at a bad one, so callers that
    only look for names (MAC_EXP_FLAG_SCAN) still see the names before the error.
    """
    if "$" not in value:
        return ((Literal(value, 0),) if value else ()), None
    result = VALUE.parse_string(value, parse_all=False)
    tokens: tuple[Literal | Reference, ...] = tuple(result)
    for index, token in enumerate(tokens):
        if isinstance(token, Reference) and token.body == "":
            return tokens[:index], ExpansionSyntaxError(token.offset, "empty macro name")
    consumed = _consumed(value, list(tokens))
    if consumed < len(value):
        # Only a bad "$..." stops the grammar (a literal run matches anything else).
        if value[consumed + 1 : consumed + 2] in ("{", "("):
            return tokens, ExpansionSyntaxError(consumed, "truncated macro reference")
        return tokens, ExpansionSyntaxError(consumed, "empty macro name")
    return tokens, None


def split_value(value: str) -> list[Literal | Reference]:
    """mac_parse(): literal runs and references, or :class:`ExpansionSyntaxError`."""
    tokens, error = scan_tokens(value)
    if error is not None:
        raise error
    return list(tokens)


def _consumed(value: str, tokens: list[Literal | Reference]) -> int:
    """Offset just past the last token."""
    if not tokens:
        return 0
    last = tokens[-1]
    if isinstance(last, Literal):
        return last.offset + (2 if value.startswith("$$", last.offset) else len(last.text))
    return last.offset + 1 + len(last.body) + (2 if last.braced else 0)


#: Where a body's first syntax error sits in mac_expand_callback()'s order of work.
STAGES = (
    "start",  # before any lookup: bad name, bad relational operands or operator
    "operands",  # after evaluating relational operands: no "?" or ":" follows
    "if_true_payload",  # unbalanced {} in the "?" result
    "after_if_true",  # garbage after the "?" result
    "if_false_payload",  # unbalanced {} in the ":" result
    "after_if_false",  # garbage after the ":" result
)


@dataclass(frozen=True, slots=True)
class Body:
    """A parsed ``${...}`` body.

    ``name`` is set for the named form, ``left``/``operator``/``right`` for the
    relational form. ``condition`` is ``None`` (plain use), ``"?"`` or ``":"``;
    ``if_true``/``if_false`` are the unparsed branch texts (``None`` when absent).
    ``error`` is the first syntax error and ``stage`` (one of :data:`STAGES`) says how
    far Postfix gets before it reports it; the parts before it are filled in.
    """

    name: str | None = None
    left: str | None = None
    operator: str | None = None
    right: str | None = None
    suffix: str | None = None
    condition: str | None = None
    if_true: str | None = None
    if_false: str | None = None
    error: ExpansionSyntaxError | None = None
    stage: str | None = None


def _curly_at(text: str, pos: int) -> int | None:
    """MAC_EXP_FIND_LEFT_CURLY: position of ``{`` after blanks, or None."""
    index = pos
    while index < len(text) and text[index] in SPACE:
        index += 1
    return index if index < len(text) and text[index] == "{" else None


def _curly_payload(text: str, pos: int) -> tuple[str, int] | None:
    """mac_exp_extract_curly_payload(): ``{payload}`` at pos and the offset after the
    blanks that follow it, or None when the braces do not balance."""
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
    return None


def _unbalanced(text: str, pos: int) -> ExpansionSyntaxError:
    return ExpansionSyntaxError(pos, f'unbalanced {{}} in attribute expression: "{text[pos:]}"')


def _with_branches(body: str, pos: int, head: Body) -> Body:
    """Add the ``?``/``:`` result operands starting at ``pos`` (mac_expand.c:639-672)."""
    parts: dict[str, str | None] = {}
    condition = head.condition

    def done(error: ExpansionSyntaxError | None = None, stage: str | None = None) -> Body:
        return Body(
            head.name,
            head.left,
            head.operator,
            head.right,
            head.suffix,
            condition,
            parts.get("if_true"),
            parts.get("if_false"),
            error,
            stage,
        )

    if condition == "?":
        start = _curly_at(body, pos)
        if start is None:
            parts["if_true"] = body[pos:]
            return done()
        payload = _curly_payload(body, start)
        if payload is None:
            return done(_unbalanced(body, start), "if_true_payload")
        parts["if_true"], pos = payload
        if pos == len(body):
            return done()
        if body[pos] != ":":
            message = f'":" expected at: "...{parts["if_true"]}}}>>>{body[pos:]}"'
            return done(ExpansionSyntaxError(pos, message), "after_if_true")
        pos += 1
    start = _curly_at(body, pos)
    if start is None:
        parts["if_false"] = body[pos:]
        return done()
    payload = _curly_payload(body, start)
    if payload is None:
        return done(_unbalanced(body, start), "if_false_payload")
    parts["if_false"], pos = payload
    if pos != len(body):
        message = f'unexpected input at: "...{parts["if_false"]}}}>>>{body[pos:]}"'
        return done(ExpansionSyntaxError(pos, message), "after_if_false")
    return done()


def _relational(body: str, start: int) -> Body:
    """``{left} OP {right}`` and what follows (mac_exp_parse_relational(), mac_expand.c:398-503)."""
    payload = _curly_payload(body, start)
    if payload is None:
        return Body(error=_unbalanced(body, start), stage="start")
    left, pos = payload
    op_end = pos
    while op_end < len(body) and body[op_end] in _OPERATOR_CHARS:
        op_end += 1
    operator = body[pos:op_end]
    if operator not in RELATIONAL_OPERATORS:
        message = f'"==" or "!=" or "<" or "<=" or ">=" or ">" expected at: "{body[pos:]}"'
        return Body(error=ExpansionSyntaxError(pos, message), stage="start")
    suffix_end = op_end
    while suffix_end < len(body) and body[suffix_end].isascii() and body[suffix_end].isalnum():
        suffix_end += 1
    suffix = body[op_end:suffix_end] or None
    if suffix is not None and suffix not in OPERATOR_SUFFIXES:
        message = f'bad operator suffix at: "...{operator}>>>{suffix}"'
        return Body(error=ExpansionSyntaxError(op_end, message), stage="start")
    op_end = suffix_end
    right_at = _curly_at(body, op_end)
    if right_at is None:
        message = f'"{{expression}}" expected at: "{body[op_end:]}"'
        return Body(error=ExpansionSyntaxError(op_end, message), stage="start")
    payload = _curly_payload(body, right_at)
    if payload is None:
        return Body(error=_unbalanced(body, right_at), stage="start")
    right, pos = payload
    head = Body(left=left, operator=operator, right=right, suffix=suffix)
    if pos == len(body):
        return head
    if body[pos] not in "?:":
        message = f'"?" or ":" expected at: "...}}>>>{body[pos:]}"'
        error = ExpansionSyntaxError(pos, message)
        return Body(
            left=left, operator=operator, right=right, suffix=suffix, error=error, stage="operands"
        )
    head = Body(left=left, operator=operator, right=right, suffix=suffix, condition=body[pos])
    return _with_branches(body, pos + 1, head)


@functools.lru_cache(maxsize=65536)
def parse_body(body: str) -> Body:
    """Parse the text inside ``${...}`` as mac_expand_callback() does; never raises."""
    start = _curly_at(body, 0)
    if start is not None:
        return _relational(body, start)
    pos = 0
    while pos < len(body) and body[pos] in SPACE:
        pos += 1
    name_start = pos
    while True:
        after = pos
        while after < len(body) and body[after] in SPACE:
            after += 1
        if after == len(body):
            return Body(name=body[name_start:pos])
        if body[after] in "?:":
            head = Body(name=body[name_start:pos], condition=body[after])
            return _with_branches(body, after + 1, head)
        if body[pos] not in NAME_CHARS:
            message = f'attribute name syntax error at: "{body[pos:]}"'
            return Body(error=ExpansionSyntaxError(pos, message), stage="start")
        pos += 1
