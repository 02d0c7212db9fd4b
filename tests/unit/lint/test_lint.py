"""Lint rules on hand-built configurations (no Postfix needed).

The defaults table is a small excerpt of ``postconf -d`` so that each test shows exactly
which names Postfix knows; tests/integration/test_check_realpostfix.py compares the same
rules with the real ``postconf`` on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from pfwatch.config.model import Duplicate, MainCf, MasterCf, MasterService, Parameter
from pfwatch.events import TableFacts
from pfwatch.lint import LintInput, lint, macro_names, service_defined_names

DEFAULTS = {
    "myhostname": "host.example",
    "smtpd_banner": "$myhostname ESMTP $mail_name",
    "mail_name": "Postfix",
    "relayhost": "",
    "default_transport": "smtp",
    "relay_transport": "relay",
    "local_transport": "local:$myhostname",
    "virtual_transport": "virtual",
    "fallback_transport": "",
    "mailbox_transport": "",
    "content_filter": "",
    "address_verify_default_transport": "$default_transport",
    "address_verify_local_transport": "$local_transport",
    "address_verify_relay_transport": "$relay_transport",
    "address_verify_virtual_transport": "$virtual_transport",
    "smtpd_restriction_classes": "",
    "smtpd_reject_footer": "",
    "daemon_directory": "/nonexistent/daemons",
    "virtual_alias_maps": "$virtual_maps",
    "virtual_maps": "",
    "smtpd_recipient_restrictions": "",
    "smtp_helo_name": "$myhostname",
    "relay_domains": "",
}


def main_cf(*entries: tuple[str, str], duplicates: tuple[Duplicate, ...] = ()) -> MainCf:
    params = {
        name: Parameter(name, value, "/etc/postfix/main.cf", line)
        for line, (name, value) in enumerate(entries, start=1)
    }
    return MainCf("/etc/postfix/main.cf", params, duplicates)


def service(name: str, command: str, line: int, **overrides: str) -> MasterService:
    return MasterService(
        name,
        "unix",
        "-",
        "-",
        "n",
        "-",
        "-",
        command,
        (),
        overrides,
        "/etc/postfix/master.cf",
        line,
    )


STOCK = MasterCf(
    "/etc/postfix/master.cf",
    (
        service("smtp", "smtp", 1),
        service("relay", "smtp", 2),
        service("local", "local", 3),
        service("virtual", "virtual", 4),
    ),
)


def run(main: MainCf, master: MasterCf = STOCK, **kw: object) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    data = LintInput(main, master, DEFAULTS, check_daemons=False, **kw)  # type: ignore[arg-type]
    for f in lint(data):
        found.setdefault(f.code, []).append(f.subject)
    return found


def test_unknown_parameter_with_did_you_mean() -> None:
    findings = lint(LintInput(main_cf(("smtpd_bannr", "hi")), STOCK, DEFAULTS, check_daemons=False))
    assert [(f.code, f.subject, f.suggestion) for f in findings] == [
        ("unused-parameter", "smtpd_bannr", "smtpd_banner")
    ]
    assert "unused parameter: smtpd_bannr=hi" in findings[0].render()
    assert findings[0].render().startswith("/etc/postfix/main.cf:1: warning:")


def test_user_defined_parameter_referenced_elsewhere_is_legal() -> None:
    main = main_cf(
        ("my_banner_text", "hello"),
        ("smtpd_banner", "$myhostname $my_banner_text"),
        ("lonely", "x"),
    )
    assert run(main) == {"unused-parameter": ["lonely"]}


def test_user_parameter_referenced_from_master_override_and_restriction_class() -> None:
    main = main_cf(
        ("helo_text", "x"), ("smtpd_restriction_classes", "strict"), ("strict", "reject")
    )
    master = MasterCf(
        STOCK.path, (*STOCK.services, service("out", "smtp", 9, smtp_helo_name="$helo_text"))
    )
    assert run(main, master) == {}


def test_service_defined_parameters_follow_the_command() -> None:
    master = MasterCf(STOCK.path, (service("slow", "smtp", 1), service("filter", "pipe", 2)))
    names = service_defined_names(master)
    assert "slow_destination_rate_delay" in names
    assert "filter_time_limit" in names
    assert "slow_time_limit" not in names  # only pipe and spawn get _time_limit
    main = main_cf(("slow_destination_rate_delay", "1s"), ("slow_time_limit", "5"))
    assert run(main, master).get("unused-parameter") == ["slow_time_limit"]


def test_legacy_dbms_parameters_are_known() -> None:
    main = main_cf(("virtual_alias_maps", "ldap:corp"), ("corp_server_host", "ldap.example"))
    assert "unused-parameter" not in run(main)


def test_unused_override_in_master_cf() -> None:
    master = MasterCf(
        STOCK.path,
        (
            *STOCK.services,
            service("out", "smtp", 7, my_local="a", smtp_helo_name="$my_local", typo_param="1"),
        ),
    )
    found = run(main_cf(), master)
    assert found == {"unused-parameter": ["typo_param"]}


def test_duplicate_parameter() -> None:
    main = main_cf(("myhostname", "b.example"), duplicates=(Duplicate("myhostname", 1, 5),))
    findings = list(lint(LintInput(main, STOCK, DEFAULTS, check_daemons=False)))
    assert [(f.code, f.line) for f in findings] == [("duplicate-parameter", 5)]
    assert "overriding earlier entry: myhostname" in findings[0].message


def test_undefined_reference_but_not_in_raw_parameters() -> None:
    main = main_cf(
        ("relay_domains", "$undefined_thing, ${also_missing:x}"),
        ("smtpd_reject_footer", "$client_address is per request"),
        ("smtpd_banner", "$$literal $myhostname"),
    )
    assert run(main) == {"undefined-parameter": ["also_missing", "undefined_thing"]}


def test_macro_names_forms() -> None:
    assert macro_names("$a ${b} $(c) ${d?{$e}:{f}} $$g ${{$h} == {x}?y}") == [
        "a",
        "b",
        "c",
        "d",
        "e",
        "h",
    ]


def test_transport_without_service() -> None:
    main = main_cf(
        ("default_transport", "smtpp:[relay.example]"),
        ("content_filter", "amavis:[127.0.0.1]:10024"),
    )
    found = run(main)
    assert sorted(found["missing-transport"]) == ["amavis", "smtpp"]
    f = next(
        f
        for f in lint(LintInput(main, STOCK, DEFAULTS, check_daemons=False))
        if f.subject == "smtpp"
    )
    assert f.suggestion == "smtp"


def test_default_transport_missing_from_master_is_flagged() -> None:
    master = MasterCf(STOCK.path, tuple(s for s in STOCK.services if s.name != "relay"))
    assert run(main_cf(), master) == {"missing-transport": ["relay"]}


def test_transport_table_values() -> None:
    found = run(
        main_cf(),
        table_transports={
            "hash:/etc/postfix/transport": ["smtp:[a.example]", "lmtp:unix:private/dovecot"]
        },
    )
    assert found == {"missing-transport": ["lmtp"]}


def test_missing_daemon_binary(tmp_path: Path) -> None:
    daemons = tmp_path / "sbin"
    daemons.mkdir()
    for name in ("smtp", "local", "virtual"):
        exe = daemons / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    main = main_cf(("daemon_directory", str(daemons)))
    master = MasterCf(STOCK.path, (*STOCK.services, service("x", "smtpd_typo", 5)))
    findings = lint(LintInput(main, master, DEFAULTS))
    assert [(f.code, f.subject) for f in findings] == [("missing-daemon", "smtpd_typo")]


def test_no_daemon_directory_here_is_not_a_missing_daemon(tmp_path: Path) -> None:
    """A sidecar sees the configuration but not Postfix's programs: no finding."""
    main = main_cf(("daemon_directory", str(tmp_path / "not-on-this-host")))
    master = MasterCf(STOCK.path, (*STOCK.services, service("x", "smtpd_typo", 5)))
    assert list(lint(LintInput(main, master, DEFAULTS))) == []


def test_tables(tmp_path: Path) -> None:
    src = tmp_path / "virtual"
    src.write_text("a@example b\n")
    db = tmp_path / "virtual.db"
    db.write_text("x")
    os.utime(db, (1000, 1000))
    tables = [
        TableFacts("hash:" + str(src), "hash", str(src), str(db), False, ("virtual_alias_maps",)),
        TableFacts("hash:/no/such", "hash", "/no/such", "/no/such.db", None, ("transport_maps",)),
        TableFacts("hash:" + str(tmp_path / "t"), "hash", str(src), str(tmp_path / "t.db"), None),
    ]
    found = run(main_cf(), tables=tables)
    assert found == {
        "table-stale": ["hash:" + str(src)],
        "missing-table": ["hash:/no/such"],
        "table-not-built": ["hash:" + str(tmp_path / "t")],
    }
