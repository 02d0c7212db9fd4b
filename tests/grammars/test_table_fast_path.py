"""The ``re`` fast paths of the postmap and postalias line grammars accept what the grammars
accept and read the same key and value: checked on generated lines, biased towards the
characters that matter (blanks, colons, quotes, backslashes)."""

from __future__ import annotations

import pyparsing as pp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pfwatch.grammars import table_source as ts

ALPHABET = st.sampled_from([*' \t\v\f\r:"\\abc#@.=-', "\u00e9", "\x00"])
LINES = st.lists(ALPHABET, max_size=30).map("".join).filter(lambda t: t[:1] not in ts.POSTFIX_SPACE)


def grammar_value(grammar: pp.ParserElement, text: str) -> tuple[str, str] | None:
    try:
        result = grammar.parse_string(text, parse_all=True)
    except pp.ParseBaseException:
        return None
    return str(result["key"]), str(result["value"]) if "value" in result else ""


@settings(max_examples=800, deadline=None)
@given(LINES)
@example("key value")
@example("key")
@example("k\t \tv  w ")
def test_postmap_fast_path_agrees_with_the_grammar(text: str) -> None:
    fast = ts._POSTMAP_FAST.fullmatch(text)
    slow = grammar_value(ts.POSTMAP_LINE, text)
    assert (fast is not None) == (slow is not None), text
    if fast is not None and slow is not None:
        assert fast.group(1) == slow[0]
        assert ts._strip(fast.group(2) or "") == ts._strip(slow[1])


@settings(max_examples=800, deadline=None)
@given(LINES)
@example('"a:b": c')
@example('"unterminated: x')
@example("name:")
@example(":value")
@example('a"b"c: d')
def test_alias_fast_path_agrees_with_the_grammar(text: str) -> None:
    fast = ts._ALIAS_FAST.fullmatch(text)
    slow = grammar_value(ts.ALIAS_LINE, text)
    assert (fast is not None) == (slow is not None), text
    if fast is not None and slow is not None:
        assert ts._strip(fast.group(1)) == ts._strip(slow[0])
        assert ts._strip(fast.group(2)) == ts._strip(slow[1])


def test_a_long_line_without_a_colon_is_refused_quickly() -> None:
    """No nested repetition: a refused line costs linear time, not exponential."""
    assert ts._ALIAS_FAST.fullmatch("a" * 50_000) is None
    table = ts.parse_table_source("a" * 5_000 + "\n", "alias")
    assert table.problems and not table.entries
