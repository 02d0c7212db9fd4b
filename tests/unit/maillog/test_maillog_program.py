"""Syslog tags -> instance, service, daemon."""

from __future__ import annotations

import pytest

from pfwatch.maillog.program import ProgramDecomposer, ProgramName, decompose


@pytest.mark.parametrize(
    ("tag", "instance", "service", "daemon"),
    [
        ("postfix/smtpd", "postfix", "", "smtpd"),
        ("postfix/submission/smtpd", "postfix", "submission", "smtpd"),
        ("postfix-out/smtpd", "postfix-out", "", "smtpd"),
        ("postfix-out/submission/smtpd", "postfix-out", "submission", "smtpd"),
        ("10025/smtpd", "10025", "", "smtpd"),
        ("postfix/postfix-script", "postfix", "", "postfix-script"),
        ("postfix/master", "postfix", "", "master"),
        ("postfix-10.20.30.40/smtp", "postfix-10.20.30.40", "", "smtp"),
        ("/postfix-script", "", "", "postfix-script"),
        ("postfix/trivial-rewrite", "postfix", "", "trivial-rewrite"),
    ],
)
def test_known_programs(tag: str, instance: str, service: str, daemon: str) -> None:
    assert decompose(tag) == ProgramName(tag, instance, service, daemon)


@pytest.mark.parametrize(
    "tag", ["opendkim", "dovecot", "postfix", "lightmeter/headers", "postfix/", "smtpd", "a/b/c"]
)
def test_other_programs(tag: str) -> None:
    assert decompose(tag) is None


def test_configured_syslog_names_map_to_services() -> None:
    programs = ProgramDecomposer({"mailin": "127.0.0.1:10025", "postfix/sub": "submission"})
    assert programs("mailin/smtpd") == ProgramName(
        "mailin/smtpd", "mailin", "127.0.0.1:10025", "smtpd"
    )
    assert programs("postfix/sub/smtpd") == ProgramName(
        "postfix/sub/smtpd", "postfix", "submission", "smtpd"
    )
    # a configured syslog name makes even an unknown program a Postfix line
    assert programs("mailin/policy-helper") is not None
    assert programs("other/policy-helper") is None
    assert programs("mailin/smtpd") is programs("mailin/smtpd")  # cached
