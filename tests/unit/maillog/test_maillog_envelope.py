"""Envelope parsing: every line format, the year of syslog dates, bad timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pfwatch.maillog.envelope import TimestampParser, journal_envelope, parse_envelope


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def parser(reference: float = utc(2025, 6, 1)) -> TimestampParser:
    return TimestampParser(reference, UTC)


@pytest.mark.parametrize(
    ("line", "at"),
    [
        (
            "Aug  4 00:03:15 mx postfix/smtpd[1]: connect from a[192.0.2.1]",
            utc(2024, 8, 4, 0, 3, 15),
        ),
        (
            "Aug 04 00:03:15 mx postfix/smtpd[1]: connect from a[192.0.2.1]",
            utc(2024, 8, 4, 0, 3, 15),
        ),
        ("Jan 1 00:00:00 mx postfix/smtpd[1]: x", utc(2025, 1, 1)),
        ("May 31 23:59:59.5 mx postfix/smtpd[1]: x", utc(2025, 5, 31, 23, 59, 59) + 0.5),
        (
            "2024-08-29T01:08:59.764590+00:00 mx postfix/smtpd[1]: x",
            utc(2024, 8, 29, 1, 8, 59) + 0.76459,
        ),
        ("2024-08-29T03:08:59+02:00 mx postfix/smtpd[1]: x", utc(2024, 8, 29, 1, 8, 59)),
        ("2024-08-29T03:08:59+0200 mx postfix/smtpd[1]: x", utc(2024, 8, 29, 1, 8, 59)),
        ("2024-08-29T01:08:59Z mx postfix/smtpd[1]: x", utc(2024, 8, 29, 1, 8, 59)),
        ("2024-08-29 01:08:59 mx postfix/smtpd[1]: x", utc(2024, 8, 29, 1, 8, 59)),
        ("2023 Feb 03 04:05:06.250 mx postfix/smtpd[1]: x", utc(2023, 2, 3, 4, 5, 6) + 0.25),
        (
            "2024-01-01T00:00:00.999999999Z stdout F Dec 31 23:00:00 mx postfix/qmgr[9]: x",
            utc(2024, 1, 1) + 0.999999999,
        ),
        (
            "2021-06-16T13:53:50+02:00 Jun 16 13:53:50 mx postfix/smtpd[2]: x",
            utc(2021, 6, 16, 11, 53, 50),
        ),
    ],
)
def test_timestamps_of_every_format(line: str, at: float) -> None:
    envelope = parse_envelope(line, parser())
    assert envelope is not None
    assert envelope.at == pytest.approx(at, abs=1e-6)
    assert envelope.tag.endswith("/smtpd") or envelope.tag.endswith("/qmgr")


def test_december_read_in_january_is_last_year() -> None:
    january = parser(utc(2025, 1, 2, 8))
    december = parse_envelope("Dec 31 23:59:59 mx postfix/qmgr[1]: x", january)
    new_year = parse_envelope("Jan  2 07:00:00 mx postfix/qmgr[1]: x", january)
    assert december is not None and new_year is not None
    assert december.at == utc(2024, 12, 31, 23, 59, 59)
    assert new_year.at == utc(2025, 1, 2, 7)


def test_changing_the_reference_changes_the_year() -> None:
    stamps = parser(utc(2025, 6, 1))
    line = "Mar  1 00:00:00 mx postfix/qmgr[1]: x"
    first = parse_envelope(line, stamps)
    stamps.reference_time = utc(2022, 6, 1)
    second = parse_envelope(line, stamps)
    assert first is not None and second is not None
    assert first.at - second.at == pytest.approx(
        (datetime(2025, 3, 1) - datetime(2022, 3, 1)).total_seconds(), abs=1e-6
    )


def test_zone_of_stamps_without_offset() -> None:
    offset = timezone(timedelta(hours=-5))
    stamps = TimestampParser(utc(2025, 6, 1), offset)
    envelope = parse_envelope("Mar  1 00:00:00 mx postfix/qmgr[1]: x", stamps)
    assert envelope is not None
    assert envelope.at == utc(2025, 3, 1, 5)


@pytest.mark.parametrize(
    "line",
    [
        "Feb 30 00:00:00 mx postfix/smtpd[1]: impossible date",
        "Foo  1 00:00:00 mx postfix/smtpd[1]: no such month",
        "2024-13-01T00:00:00Z mx postfix/smtpd[1]: no such month",
        "2024-01-01T00:00:00+9 mx postfix/smtpd[1]: bad offset",
        "Jan  1 00:00:00 hostname",
        "Jan  1 00:00:00 hostname postfix/postscreen[12345: foo",
        "",
        "\x00\x00\x00",
    ],
)
def test_bad_envelopes_give_none(line: str) -> None:
    assert parse_envelope(line, parser()) is None


def test_parts_and_solaris_id() -> None:
    line = "Jan 10 10:00:01 mx postfix-out/submission/smtpd[4711]: [ID 197553 mail.info] hi"
    envelope = parse_envelope(line, parser())
    assert envelope is not None
    assert (envelope.host, envelope.tag, envelope.pid, envelope.message) == (
        "mx",
        "postfix-out/submission/smtpd",
        4711,
        "hi",
    )


def test_missing_pid_and_empty_message() -> None:
    envelope = parse_envelope("Jan 10 10:00:01 mx postfix/bounce: ", parser())
    assert envelope is not None
    assert (envelope.pid, envelope.message) == (0, "")


def test_journal_record() -> None:
    record = {
        "MESSAGE": "connect from a[192.0.2.1]",
        "SYSLOG_IDENTIFIER": "postfix/smtpd",
        "SYSLOG_PID": "42",
        "_PID": "1",
        "__REALTIME_TIMESTAMP": "1700000000250000",
        "_HOSTNAME": "mx",
    }
    envelope = journal_envelope(record)
    assert envelope is not None
    assert (envelope.at, envelope.tag, envelope.pid, envelope.host) == (
        1700000000.25,
        "postfix/smtpd",
        42,
        "mx",
    )
    binary = dict(record, MESSAGE=list(b"connect from \xff"))
    decoded = journal_envelope(binary)
    assert decoded is not None and decoded.message == "connect from \ufffd"
    assert journal_envelope({"MESSAGE": "x"}) is None
    assert journal_envelope(dict(record, __REALTIME_TIMESTAMP="soon")) is None
