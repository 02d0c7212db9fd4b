"""``cidr:`` table sources: ``address[/mask] result``, ``!pattern``, ``if``/``endif``.

Follows dict_cidr.c and cidr_match.c of Postfix 3.7.11 (src/util/). A logical line is
``if PATTERN`` (the whole rest of the line is the pattern), ``endif`` (nothing may follow),
or ``PATTERN result``. A pattern is any number of ``!`` (each negates), an IPv4 or IPv6
address (optionally in ``[...]``), and an optional ``/mask``; the address must have no bits
set below the mask. Problem texts are Postfix's own ("bad address pattern", "bad mask
value", "bad mask length", "non-null host address bits", "no lookup result", "ENDIF without
IF", "garbage after ENDIF", "IF has no matching ENDIF"); Postfix skips the rule and goes on.

Inputs: decoded file text. Outputs: :class:`~pfwatch.grammars.table_source.ParsedTable`
whose keys are the pattern as written, prefixed by enclosing ``if`` patterns
(``"10.0.0.0/8 > 10.1.0.0/16"``) and made unique with ``#2``... Errors: none.
"""

from __future__ import annotations

import ipaddress

import pyparsing as pp

from pfwatch.grammars._tokens import POSTFIX_SPACE, LogicalLine, logical_lines
from pfwatch.grammars.table_source import ParsedTable, Problem, TableEntry

__all__ = ["check_cidr_pattern", "parse_cidr_table"]

_BLANK = pp.Regex(f"[{POSTFIX_SPACE}]+").set_name("blank")
_WORD = pp.Regex(f"[^{POSTFIX_SPACE}]+").set_name("pattern")
_REST = pp.Regex(r".+", flags=0x10).set_name("rest")

#: ``if PATTERN...`` / ``endif [garbage]`` / ``PATTERN [result]``.
IF_LINE = (
    pp.CaselessKeyword("if", ident_chars=pp.alphanums) + pp.Opt(_BLANK) + pp.Opt(_REST("pattern"))
).set_name("IF")
ENDIF_LINE = (
    pp.CaselessKeyword("endif", ident_chars=pp.alphanums) + pp.Opt(_BLANK) + pp.Opt(_REST("extra"))
).set_name("ENDIF")
_NEGATION = pp.Regex(f"(?:![{POSTFIX_SPACE}]*)+").set_name("negation")
RULE_LINE = (
    pp.Opt(_NEGATION("negation"))
    + pp.Opt(_WORD("pattern"))
    + pp.Opt(_BLANK)
    + pp.Opt(_REST("result"))
).set_name("rule")
CIDR_LINE = (IF_LINE("if") | ENDIF_LINE("endif") | RULE_LINE("rule")).set_name("cidr line")
CIDR_LINE.leave_whitespace()
CIDR_LINE.parse_with_tabs()  # offsets and values must keep their tabs

_ADDRESS_CHARS = frozenset("0123456789abcdefABCDEF:.")


def _field(result: pp.ParseResults, name: str) -> str:
    """A named result as text, empty when the optional part was absent."""
    return str(result[name]) if name in result else ""


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text or not set(text) <= _ADDRESS_CHARS:
        return None
    try:
        if ":" in text:
            return ipaddress.IPv6Address(text)
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def check_cidr_pattern(pattern: str) -> str | None:
    """Why Postfix rejects ``pattern`` (cidr_match_parse), or None when it is valid."""
    text = pattern
    while text.startswith("!"):
        text = text[1:].lstrip(POSTFIX_SPACE)
    if not text:
        return "no address pattern"
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            return f"missing ']' character after \"{pattern}\""
        text = text[1:close] + text[close + 1 :]
    address_text, slash, mask_text = text.partition("/")
    address = _address(address_text)
    if address is None:
        return f'bad address pattern: "{pattern}"'
    if not slash:
        return None
    if not mask_text.isascii() or not mask_text.isdigit():
        return f'bad mask value in "{pattern}"'
    mask = int(mask_text)
    if mask > address.max_prefixlen:
        return f'bad mask length in "{pattern}"'
    network = ipaddress.ip_network(f"{address}/{mask}", strict=False)
    if network.network_address != address:
        return (
            f'non-null host address bits in "{pattern}", perhaps you should use '
            f'"{network.network_address}/{mask}" instead'
        )
    return None


def parse_cidr_table(text: str) -> ParsedTable:
    """Parse a cidr table source into ordered rules and positioned problems."""
    lines, warnings = logical_lines(text)
    problems: list[Problem] = list(warnings)
    entries: list[TableEntry] = []
    seen: dict[str, int] = {}
    stack: list[tuple[str, LogicalLine]] = []

    def problem(logical: LogicalLine, offset: int, message: str) -> None:
        line, column = logical.position(min(offset, max(len(logical.text) - 1, 0)))
        problems.append(Problem(line, column, f"cidr map: {message}: skipping this rule"))

    for logical in lines:
        result = CIDR_LINE.parse_string(logical.text)
        if "endif" in result:
            if "extra" in result:
                problem(logical, logical.text.find(str(result["extra"])), "garbage after ENDIF")
            elif not stack:
                problem(logical, 0, "ENDIF without IF")
            else:
                stack.pop()
            continue
        pattern = (_field(result, "pattern")).strip(POSTFIX_SPACE)
        column = logical.text.find(pattern) if pattern else len(logical.text)
        why = check_cidr_pattern(pattern)
        negation = (_field(result, "negation")).count("!")
        pattern = "!" * negation + pattern
        if "if" in result:
            if why is not None:
                problem(logical, column, why)
            else:
                stack.append((pattern, logical))
            continue
        value = (_field(result, "result")).strip(POSTFIX_SPACE)
        if why is not None:
            problem(logical, column, why)
            continue
        if not value:
            problem(logical, len(logical.text), "no lookup result")
            continue
        key = " > ".join([*(text for text, _ in stack), pattern])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key} #{seen[key]}"
        entries.append(TableEntry(key, value, logical.line))
    for _pattern, opened in stack:
        line, column = opened.position(0)
        problems.append(Problem(line, column, "cidr map: IF has no matching ENDIF"))
    problems.sort(key=lambda item: (item.line, item.column))
    return ParsedTable(tuple(entries), tuple(problems))
