"""main.cf reading: logical lines, values, duplicates, errors, bytes; hypothesis properties.

Properties: any text either parses or raises a ConfigSyntaxError whose line and column lie
inside the file; parameters written out as ``name = value`` (with continuation lines
anywhere a blank is) read back to the same parameters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.config.maincf import decode, encode, load_main_cf, parse_main_cf
from pfwatch.errors import ConfigSyntaxError, SourceUnavailable


def values(text: str) -> dict[str, str]:
    return {name: p.value for name, p in parse_main_cf(text).parameters.items()}


def test_assignments_comments_and_blank_lines() -> None:
    text = "# c\n\na = 1\n  # indented comment\nb=2\n"
    assert values(text) == {"a": "1", "b": "2"}
    assert parse_main_cf(text).parameters["b"].line == 5


def test_continuation_keeps_the_leading_blanks_and_skips_comments_and_blank_lines() -> None:
    text = "a = x,\n  y,\n# comment\n\n\tz\nb = 2\n"
    assert values(text) == {"a": "x,  y,\tz", "b": "2"}


def test_value_is_trimmed_and_braces_are_text() -> None:
    assert values("a =   { b  c }  \t\n") == {"a": "{ b  c }"}


def test_empty_value_and_name_with_odd_characters() -> None:
    assert values("relayhost =\nx-y.z = 1\n") == {"relayhost": "", "x-y.z": "1"}


def test_leading_blank_first_line_is_skipped() -> None:
    assert values("  a = 1\n  b = 2\nc = 3\n") == {"c": "3"}


def test_nul_ends_the_value() -> None:
    assert values("a = x\0y\n") == {"a": "x"}


def test_crlf_line_endings() -> None:
    assert values("a = 1\r\nb = 2\r\n") == {"a": "1", "b": "2"}


def test_duplicates_last_wins_and_are_recorded() -> None:
    parsed = parse_main_cf("a = 1\nb = 0\na = 2\na = 3\n")
    assert parsed.parameters["a"].value == "3"
    assert parsed.parameters["a"].line == 4
    assert [(d.name, d.first_line, d.last_line) for d in parsed.duplicates] == [
        ("a", 1, 3),
        ("a", 1, 4),
    ]


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("a = 1\nno equals here\n", 2, 4, "missing '=' after attribute name"),
        ("a = 1\n= 2\n", 2, 1, "missing attribute name"),
        ("a = 1\nname\n  still\n", 3, 3, "missing '=' after"),
        ("x\n", 1, 2, "missing '='"),
    ],
)
def test_errors_are_positioned(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_main_cf(text, "/etc/postfix/main.cf")
    assert (caught.value.line, caught.value.column) == (line, column)
    assert message in caught.value.message
    assert str(caught.value).startswith(f"/etc/postfix/main.cf:{line}:{column}: ")


def test_continuation_can_supply_the_equals_sign() -> None:
    assert values("name\n  = continued\n") == {"name": "continued"}


def test_non_utf8_bytes_round_trip(tmp_path: Path) -> None:
    raw = b"banner = caf\xe9 \xc3\xa9 \xff\n"
    (tmp_path / "main.cf").write_bytes(raw)
    parsed = load_main_cf(str(tmp_path / "main.cf"))
    assert encode(parsed.parameters["banner"].value) == b"caf\xe9 \xc3\xa9 \xff"
    assert encode(decode(raw)) == raw


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable):
        load_main_cf(str(tmp_path / "absent.cf"))
    with pytest.raises(SourceUnavailable):
        load_main_cf(str(tmp_path))


ANY_TEXT = st.text(alphabet=st.sampled_from(list("ab =#\t\n\r{}$\\\x00é\udce9")), max_size=200)


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_never_crashes_and_errors_are_inside_the_file(text: str) -> None:
    try:
        parsed = parse_main_cf(text, "t")
    except ConfigSyntaxError as exc:
        assert exc.path == "t"
        assert 1 <= exc.line <= text.count("\n") + 1
        assert exc.column >= 1
        physical = text.split("\n")[exc.line - 1]
        assert exc.column <= len(physical) + 1
        return
    for parameter in parsed.parameters.values():
        assert 1 <= parameter.line <= text.count("\n") + 1
        assert parameter.value == parameter.value.strip(" \t\n\r\v\f")


NAME = st.from_regex(r"[a-z_][a-z0-9_.-]{0,12}", fullmatch=True)
# "#" is left out: a continuation line whose first non-blank is "#" is a comment.
WORD = st.text(alphabet=st.sampled_from(list("abc$={}(),:?/é\udce9")), min_size=1, max_size=6)
VALUE = st.lists(WORD, max_size=5)


@settings(max_examples=200, deadline=None)
@given(
    entries=st.dictionaries(NAME, VALUE, max_size=8),
    breaks=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_round_trip(entries: dict[str, list[str]], breaks: list[bool]) -> None:
    lines = []
    flags = iter(breaks)
    for name, words in entries.items():
        text = f"{name} ="
        for word in words:
            text += "\n    " if next(flags, False) else " "
            text += word
        lines.append(text)
    text = "\n# comment\n".join(lines) + "\n"
    parsed = parse_main_cf(text)
    assert set(parsed.parameters) == set(entries)
    for name, words in entries.items():
        assert " ".join(parsed.parameters[name].value.split()) == " ".join(words)
    rewritten = "".join(f"{n} = {p.value}\n" for n, p in parsed.parameters.items())
    assert values(rewritten) == {n: p.value for n, p in parsed.parameters.items()}
