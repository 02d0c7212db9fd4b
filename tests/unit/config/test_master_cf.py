"""master.cf reading: fields, service types, daemon arguments, -o overrides, errors.

Properties: any text parses or raises a ConfigSyntaxError positioned inside the file; the
``postconf -M`` rendering of parsed services reads back to the same services.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.config.mastercf import load_master_cf, parse_master_cf
from pfwatch.config.model import MasterService
from pfwatch.config.postconf import show_master
from pfwatch.errors import ConfigSyntaxError, SourceUnavailable


def one(text: str) -> MasterService:
    services = parse_master_cf(text).services
    assert len(services) == 1
    return services[0]


def test_fields_and_key() -> None:
    service = one("smtp      inet  n       -       y       -       -       smtpd\n")
    assert (service.name, service.type, service.private, service.unpriv) == (
        "smtp",
        "inet",
        "n",
        "-",
    )
    assert (service.chroot, service.wakeup, service.maxproc, service.command) == (
        "y",
        "-",
        "-",
        "smtpd",
    )
    assert service.key == "smtp/inet"
    assert service.args == ()
    assert service.line == 1


@pytest.mark.parametrize("kind", ["inet", "unix", "unix-dgram", "fifo", "pass"])
def test_every_service_type(kind: str) -> None:
    assert one(f"svc {kind} - - n - 1 cmd\n").type == kind


def test_host_port_services() -> None:
    assert one("127.0.0.1:10025 inet n - n - 16 smtpd\n").name == "127.0.0.1:10025"
    assert one("[::1]:587 inet n - n - - smtpd\n").name == "[::1]:587"


def test_continuation_and_comments_between_entries() -> None:
    text = (
        "# header\nsmtp inet n - y - - smtpd\n  -o a=1\n# note\n  -o b=2\nnext unix - - n - - x\n"
    )
    services = parse_master_cf(text).services
    assert [s.name for s in services] == ["smtp", "next"]
    assert dict(services[0].overrides) == {"a": "1", "b": "2"}
    assert services[1].line == 6


def test_o_forms_and_flags() -> None:
    service = one("s unix - - n - - smtp -v -D -o a=1 -ob=2 -o { c = x y } -vo d=4 -- -o e=5\n")
    assert service.args == (
        "-v",
        "-D",
        "-o",
        "a=1",
        "-o",
        "b=2",
        "-o",
        "c=x y",
        "-v",
        "-o",
        "d=4",
        "--",
        "-o",
        "e=5",
    )
    assert dict(service.overrides) == {"a": "1", "b": "2", "c": "x y", "d": "4"}


def test_last_override_wins() -> None:
    assert dict(one("s unix - - n - - smtp -o max_idle=1 -o max_idle=2\n").overrides) == {
        "max_idle": "2"
    }


def test_overrides_follow_the_daemon_where_postconf_differs() -> None:
    service = one("s unix - - n - - smtpd -osyslog_name=x\n")
    assert service.args == ("-o", "sysl", "-o", "g_name=x")  # postconf's own reading
    assert dict(service.overrides) == {"syslog_name": "x"}  # what smtpd's getopt() gets


def test_non_option_arguments_keep_order_and_lose_braces() -> None:
    service = one("d unix - n n - - pipe flags=R user=v { argv=/bin/x ${sender} } -o z\n")
    assert service.args == ("flags=R", "user=v", "argv=/bin/x ${sender}", "-o", "z")
    assert dict(service.overrides) == {}


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("smtp inet n - y - smtpd\n", 1, 24, "bad field count"),
        ("ok unix - - n - - x\nsmtp tcp n - y - - smtpd\n", 2, 6, "invalid type field"),
        ("s unix yes - n - - x\n", 1, 8, "invalid private field"),
        ("s unix - - n 5m - x\n", 1, 14, "invalid wakeup field"),
        ("s unix - - n - x1 x\n", 1, 16, "invalid maxproc field"),
        ("s unix - -\n  n - -\n", 2, 8, "bad field count"),
    ],
)
def test_errors_are_positioned(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_master_cf(text, "master.cf")
    assert (caught.value.line, caught.value.column) == (line, column)
    assert message in caught.value.message


def test_wakeup_forms_postconf_accepts() -> None:
    for wakeup in ("60", "60?", "-", "?", "-?"):
        assert one(f"s unix - - n {wakeup} 1 x\n").wakeup == wakeup


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable):
        load_master_cf(str(tmp_path / "master.cf"))


ANY_TEXT = st.text(alphabet=st.sampled_from(list("ab -{}=o\tn\n#yu1?")), max_size=200)


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_never_crashes_and_errors_are_inside_the_file(text: str) -> None:
    try:
        parsed = parse_master_cf(text, "m")
    except ConfigSyntaxError as exc:
        assert 1 <= exc.line <= text.count("\n") + 1
        physical = text.split("\n")[exc.line - 1]
        assert 1 <= exc.column <= len(physical) + 1
        return
    for service in parsed.services:
        assert 1 <= service.line <= text.count("\n") + 1


SERVICE_LINE = st.tuples(
    st.sampled_from(["smtp", "127.0.0.1:25", "relay", "x-y"]),
    st.sampled_from(["inet", "unix", "unix-dgram", "fifo", "pass"]),
    st.sampled_from(["y", "n", "-"]),
    st.sampled_from(["60", "60?", "-"]),
    st.sampled_from(["1", "100", "-"]),
    st.sampled_from(["smtpd", "smtp", "pipe"]),
    st.lists(
        st.sampled_from(
            ["-v", "-D", "-o a=1", "-o { b = x y }", "-oc=3", "--", "flags=R", "{ argv=a b }"]
        ),
        max_size=5,
    ),
).map(lambda t: f"{t[0]} {t[1]} {t[2]} - {t[2]} {t[3]} {t[4]} {t[5]} " + " ".join(t[6]))


def _first_non_option(args: tuple[str, ...]) -> str | None:
    index = 0
    while index < len(args):
        if not args[index].startswith("-") or args[index] == "--":
            return args[index]
        index += 2 if args[index] == "-o" else 1
    return None


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(SERVICE_LINE, max_size=5))
def test_postconf_rendering_reads_back_the_same(lines: list[str]) -> None:
    parsed = parse_master_cf("\n".join(lines) + "\n")
    again = parse_master_cf("\n".join(show_master(parsed)) + "\n")
    fields = [
        (s.key, s.private, s.unpriv, s.chroot, s.wakeup, s.maxproc, s.command)
        for s in again.services
    ]
    assert fields == [
        (s.key, s.private, s.unpriv, s.chroot, s.wakeup, s.maxproc, s.command)
        for s in parsed.services
    ]
    for before, after in zip(parsed.services, again.services, strict=True):
        first_plain = _first_non_option(before.args)
        if first_plain is None or " " not in first_plain:  # postconf quirk: not re-braced
            assert after.args == before.args
        assert dict(after.overrides) == dict(before.overrides)
