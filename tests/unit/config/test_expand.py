"""$name expansion as Postfix's mac_expand() does it, the Expander API, and defaults.

Properties: expansion of any text returns a string or raises ExpansionError (never
anything else); text without ``$`` expands to itself; ``$$`` doubles round-trip.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.config.defaults import parameter_knowledge, postfix_defaults, shipped_version
from pfwatch.config.expand import Expander, ExpansionError, compare, compat_level, scan_names
from pfwatch.config.maincf import locate_error, parse_main_cf
from pfwatch.errors import ConfigSyntaxError

SETTINGS = {
    "a": "A",
    "empty": "",
    "n": "7",
    "ref": "$a-$n",
    "deep": "[$ref]",
    "loop": "x $loop",
    "level": "3.6",
    "raw_one": "$a",
}


def expand(value: str, **extra: str) -> str:
    return Expander({**SETTINGS, **extra}, {"mail_name": "Postfix"}).expand_value(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$a ${a} $(a)", "A A A"),
        ("$a_b $a.b", " A.b"),  # $a_b is the name "a_b", undefined
        ("$$a $$$a", "$a $A"),
        ("$deep", "[A-7]"),
        ("$mail_name", "Postfix"),
        ("<$nothing>", "<>"),
        ("${a?set}${empty?no}${nothing?no}", "set"),
        ("${a:no}${empty:e}${nothing:u}", "eu"),
        ("${a ? {x y} }|${empty : { z }}", "x y| z "),
        ("${a?{t}:{f}} ${empty?{t}:{f}} ${a?{t}:f}", "t f t"),
        ("${a?x:y}", "x:y"),
        ("${a??x:{y}}", "?x:{y}"),
        ("${{$a} == {A} ? {eq} : {ne}}", "eq"),
        ("${{$n} != {7}?{ne}:{eq}}", "eq"),
        ("${{$n} < {10}?{lt}:{ge}} ${{9} < {10}?{lt}:{ge}} ${{9x} < {10}?{lt}:{ge}}", "lt lt ge"),
        ("${{b} <= {b}?{le}}${{b} >= {c}?{ge}}${{b} > {a}?{gt}}", "legt"),
        ("[${{a} == {a}}][${{a} == {b}}]", "[true][]"),
        ("${{$a} == {B}:differ}", "differ"),
        ("${{$level} <level {3.10}?{older}:{newer}}", "older"),
        ("${{3.6.1} >level {3.6}?{yes}}", "yes"),
        ("${{2} ==level {2.0.0}?{same}}", "same"),
    ],
)
def test_expansion_forms(value: str, expected: str) -> None:
    assert expand(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${open", "truncated macro reference"),
        ("$(open", "truncated macro reference"),
        ("cost $ 5", "empty macro name"),
        ("${}", "empty macro name"),
        ("${a b}", "attribute name syntax error"),
        ("${{a} =~ {b}}", "expected at"),
        ("${{a} == b}", "{expression}"),
        ("${{a} ==length {b}}", "bad operator suffix"),
        ("${{a} == {b} x}", '"?" or ":" expected'),
        ("$(a?{x)", "unbalanced {}"),
        ("${a?{x}y}", '":" expected'),
        ("${empty:{x}y}", "unexpected input"),
        ("$loop", "unreasonable macro call nesting"),
        ("${{x} <level {2}}", "malformed compatibility level"),
        ("${{99999999999999999999} < {1}}", "bad conversion"),
    ],
)
def test_errors_postfix_rejects(value: str, message: str) -> None:
    with pytest.raises(ExpansionError) as caught:
        expand(value)
    assert message in caught.value.message
    assert isinstance(caught.value, ConfigSyntaxError)


def test_branch_not_taken_is_not_parsed() -> None:
    assert expand("${empty?{$(broken}}") == ""
    assert expand("${a:$}") == ""
    with pytest.raises(ExpansionError):
        expand("${a?{$(broken}}")
    with pytest.raises(ExpansionError):
        expand("${a?$}")


def test_expand_uses_explicit_then_default_and_reports_lines() -> None:
    expander = Expander(
        {"myorigin": "$mydomain", "bad": "${x"},
        {"mydomain": "example.org", "myorigin": "$myhostname"},
        lines={"bad": 12},
        path="/etc/postfix/main.cf",
    )
    assert expander.raw("myorigin") == "$mydomain"
    assert expander.raw("mydomain") == "example.org"
    assert expander.raw("nothing") is None
    assert expander.expand("myorigin") == "example.org"
    assert expander.expand("nothing") == ""
    with pytest.raises(ExpansionError) as caught:
        expander.expand("bad")
    assert (caught.value.path, caught.value.line) == ("/etc/postfix/main.cf", 12)


def test_raw_parameters_are_not_expanded() -> None:
    expander = Expander(SETTINGS, {}, raw_names=frozenset({"raw_one"}))
    assert expander.expand("raw_one") == "$a"
    assert expander.references("raw_one") == frozenset()


def test_references_are_transitive_and_cover_every_branch() -> None:
    expander = Expander(
        {"x": "${p?{$q}:{$r}} ${{$s} == {1}?{$t}}", "q": "$u", "u": "$x"},
        {"r": "$v"},
    )
    assert expander.references("x") == {"p", "q", "r", "s", "t", "u", "v", "x"}
    assert expander.references("nothing") == frozenset()


def test_scan_names_stops_at_the_first_error_like_postfix() -> None:
    assert scan_names("$a ${b?$c} $") == {"a", "b", "c"}
    assert scan_names("$a ${ bad name } $c") == {"a"}


def test_with_overrides_wins_over_main_cf() -> None:
    expander = Expander({"syslog_name": "postfix", "tag": "$syslog_name"}, {})
    local = expander.with_overrides({"syslog_name": "postfix/submission"})
    assert local.expand("tag") == "postfix/submission"
    assert expander.expand("tag") == "postfix"
    assert expander.expand_value("$syslog_name", {"syslog_name": "o"}) == "o"


def test_compare_and_compat_level() -> None:
    assert compare("10", "<", "9") is False  # numeric
    assert compare("10", "<", "9x") is True  # strcmp
    assert compare("caf\udce9", ">", "cafe") is True  # bytes order
    assert compat_level(" 3.6") == (3, 6, 0)
    assert compat_level("3.6.") is None
    assert compat_level("-1") is None


def test_defaults_table_and_knowledge() -> None:
    shipped = postfix_defaults(None)
    assert shipped["mail_name"] == "Postfix"
    assert shipped["default_process_limit"] == "100"
    assert shipped_version() == "3.7.11"
    knowledge = parameter_knowledge(None)
    assert "virtual_maps" in knowledge.legacy
    assert "smtpd_expansion_filter" in knowledge.raw
    assert ("_destination_concurrency_limit", "default_destination_concurrency_limit") in (
        knowledge.service_parameters["smtp"]
    )
    assert knowledge.postconf is None


def test_runtime_defaults_fall_back_without_postconf() -> None:
    assert postfix_defaults("/nonexistent/postconf")["mail_name"] == "Postfix"


TEXT = st.text(alphabet=st.sampled_from(list("${}()?:=<>! ab{}$l")), max_size=40)


@settings(max_examples=500, deadline=None)
@given(value=TEXT)
def test_never_crashes(value: str) -> None:
    try:
        result = expand(value)
    except ExpansionError as exc:
        assert exc.column >= 1
        return
    if "$" not in value:
        assert result == value


@settings(max_examples=200, deadline=None)
@given(value=st.text(alphabet=st.sampled_from(list("ab c{}()?:")), max_size=30))
def test_doubled_dollars_are_literal(value: str) -> None:
    assert expand(value.replace("c", "$$")) == value.replace("c", "$")


def test_errors_point_into_the_file() -> None:
    text = "a = 1\nsmtpd_banner = ok,\n   more ${oops\nb = [$smtpd_banner]\n"
    parsed = parse_main_cf(text, "main.cf")
    expander = Expander(
        {n: p.value for n, p in parsed.parameters.items()},
        {},
        lines={n: p.line for n, p in parsed.parameters.items()},
    )
    for name in ("smtpd_banner", "b"):  # b only refers to the broken value
        with pytest.raises(ExpansionError) as caught:
            expander.expand(name)
        assert caught.value.parameter == "smtpd_banner"
        located = locate_error(text, caught.value)
        assert (located.line, located.column) == (3, 9)
        assert text.split("\n")[2][located.column - 1 :].startswith("${oops")
