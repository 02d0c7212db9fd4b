"""Maillog line formats ("envelopes") as data: one regular expression per format.

An envelope is everything around the Postfix message text: timestamp, host, syslog tag
and pid. Each :class:`EnvelopeFormat` names a format, gives its pattern (Python ``re``
syntax with the named groups listed below) and an example line. Inputs: none. Outputs:
the ``FORMATS`` tuple (tried in order; the most common first), the ``PREFIXES`` tuple
(container-runtime prefixes stripped before a syslog line), the Solaris ``[ID n fac.pri]``
pattern and the month table. Errors: none; patterns are compiled by
:mod:`pfwatch.maillog.envelope`.

Named groups: ``mon`` ``day`` ``time`` ``frac`` (syslog-style dates without a year),
``year`` (templates that add one), ``iso`` (an RFC 3339 / ISO 8601 timestamp), ``host``,
``tag``, ``pid``, ``msg``.
"""

from __future__ import annotations

from typing import NamedTuple


class EnvelopeFormat(NamedTuple):
    """One line format: a name, a regular expression and an example line."""

    name: str
    pattern: str
    example: str
    note: str


MONTHS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}

# The syslog tag ends at whitespace, "[" or ":"; the pid is optional (postlog -t, some
# relays drop it). The message may be empty (Postfix logs "QUEUEID: " for bounces).
_TAIL = r" (?P<host>\S+) (?P<tag>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)"
_SYSLOG_DATE = (
    r"(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d)(?P<frac>\.\d+)?"
)
_ISO = (
    r"(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?"
    r"(?:Z|[+-]\d\d:?\d\d)?)"
)

FORMATS: tuple[EnvelopeFormat, ...] = (
    EnvelopeFormat(
        "syslog",
        r"^" + _SYSLOG_DATE + _TAIL,
        "Aug  4 00:03:15 mx postfix/smtpd[2438]: connect from a.example[192.0.2.1]",
        "RFC 3164 (rsyslog/syslog-ng default) and Postfix's own maillog_file, which writes "
        '"%b %d %H:%M:%S " with a zero-padded day and the first host label '
        "(src/util/msg_logger.c:199-210), also when maillog_file = /dev/stdout",
    ),
    EnvelopeFormat(
        "rfc3339",
        r"^" + _ISO + _TAIL,
        "2024-08-29T01:08:59.764590+00:00 mx postfix/smtpd[1938]: connect from a[192.0.2.1]",
        "RFC 3339 / ISO 8601 (rsyslog RSYSLOG_FileFormat, high precision) and "
        "journalctl -o short-iso / short-iso-precise (offset without a colon)",
    ),
    EnvelopeFormat(
        "rfc5424",
        r"^(?:<\d{1,3}>)?1 " + _ISO + r" (?P<host>\S+) (?P<tag>[^\s\[:]+) (?:(?P<pid>\d+)|-) "
        r"\S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+) (?:\ufeff)?(?P<msg>.*)",
        "<22>1 2024-05-06T09:25:41.123+02:00 mx postfix/smtpd 1650 - - connect from a[192.0.2.1]",
        "RFC 5424 (rsyslog RSYSLOG_SyslogProtocol23Format, syslog-ng syslog() destinations)",
    ),
    EnvelopeFormat(
        "year_syslog",
        r"^(?P<year>\d{4}) " + _SYSLOG_DATE + _TAIL,
        "2024 Jan 02 03:04:05.678 mx postfix/qmgr[12]: 3A1973E542: removed",
        "templates that prepend the year, e.g. syslog-ng $YEAR $MONTH_ABBREV...",
    ),
)

FAST_SYSLOG_PREFIX = (
    r"^(?P<stamp>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) (?P<tag>[^\s\[:]+)"
    r"(?:\[(?P<pid>\d+)\])?: ?"
)
"""The common case of the "syslog" format (no fraction, two-column day) as a prefix for the
replay fast path, which appends the catalogue's queue-id pattern and ``(?P<msg>.*)``."""

# Stripped in front of a line before FORMATS are tried again; the timestamp of the prefix
# (it has a year and an offset) wins over the syslog date behind it.
PREFIXES: tuple[EnvelopeFormat, ...] = (
    EnvelopeFormat(
        "cri",
        r"^" + _ISO + r" (?:stdout|stderr) [FP] ",
        "2024-01-01T00:00:00.000000000Z stdout F Jan  1 00:00:00 mx postfix/qmgr[9]: ...",
        "Kubernetes CRI container log (containerd, CRI-O)",
    ),
    EnvelopeFormat(
        "rfc3339_prefix",
        r"^" + _ISO + r" (?=[A-Z][a-z]{2} {1,2}\d{1,2} \d\d:\d\d:\d\d)",
        "2021-06-16T13:53:50+02:00 Jun 16 13:53:50 mx postfix/smtpd[20]: connect from ...",
        "docker logs --timestamps and log shippers that prepend their receive time",
    ),
)

SOLARIS_ID = EnvelopeFormat(
    "solaris_id",
    r"^\[ID \d+ [a-z0-9]+\.[a-z]+\] ",
    "Jan  1 00:00:00 mx postfix/smtpd[1]: [ID 197553 mail.info] connect from ...",
    "Solaris syslogd message ids, stripped from the start of the message",
)

JOURNAL_FIELDS = {
    "message": "MESSAGE",
    "identifier": "SYSLOG_IDENTIFIER",
    "pid": ("SYSLOG_PID", "_PID"),
    "realtime": "__REALTIME_TIMESTAMP",
    "cursor": "__CURSOR",
    "host": "_HOSTNAME",
}
"""journalctl -o json field names (systemd.journal-fields(7)); timestamps in microseconds."""
