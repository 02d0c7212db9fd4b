"""Issue 11: the real-Postfix release matrix (3.5.25, 3.7.11, 3.10.13 in Debian chroots).

Each release's Postfix runs from its cached chroot (:mod:`pfwatch.testing.chroot_backend`)
with a private configuration on a loopback port. Checked per release:

- catalogue coverage of the log it writes, without ``-v`` and with ``-v`` on every
  master.cf service (postlogd excepted: its own ``-v`` lines are log records it would
  receive again, one more batch per record, without end): under 0.5% unrecognized lines;
- ``daemon started -- version X`` in that log names the chroot's ``mail_version``.

The figures print with ``pytest -s``. A missing chroot skips with one line locally and
fails under CI (scripts/test.sh builds the chroots).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from pfwatch.instance.layout import STOCK_SERVICES
from pfwatch.instance.local import PostfixInstance
from pfwatch.maillog.reader import LogClassifier, iter_log_events
from pfwatch.testing.chroot_backend import (
    SUITES,
    ChrootPostfixInstance,
    chroot_missing,
    release_of,
)
from pfwatch.testing.plugin import unavailable

pytestmark = [pytest.mark.postfix, pytest.mark.releases]

LIMIT = 0.005
EVERY_SERVICE = (
    *(name for name, *_ in STOCK_SERVICES if name not in ("smtp-inet", "postlog")),
    "smtpd",
)


def _instance(suite: str, verbose: tuple[str, ...]) -> ChrootPostfixInstance:
    reason = chroot_missing(suite)
    if reason is not None:
        unavailable(reason)
    return ChrootPostfixInstance(suite, max_idle=3, verbose=verbose)


def _drive(pf: PostfixInstance) -> None:
    """Mail relayed to the sink (smtpd, cleanup, qmgr, smtp), a reload, idle exits."""
    for n in range(3):
        pf.send_mail(f"s{n}@client.pfwatch.test", f"r{n}@remote.pfwatch.test")
    time.sleep(2)
    pf.reload(wait=True)
    since = pf.log_offset()
    pf.send_mail("after@client.pfwatch.test", "reload@remote.pfwatch.test")
    pf.wait_for_log(r"smtpd\[\d+\]: disconnect from", 15, since=since)
    time.sleep(pf.max_idle + 2)  # the idle smtpd and smtp processes exit


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "verbose"])
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_catalogue_covers_the_release_log(suite: str, verbose: bool) -> None:
    pf = _instance(suite, EVERY_SERVICE if verbose else ())
    classifier = LogClassifier(keep_unrecognized=1000)
    try:
        pf.start()
        _drive(pf)
        pf.stop()
        events = list(iter_log_events([str(pf.maillog)], classifier))
    finally:
        pf.close()
    version = release_of(suite)
    stats = classifier.stats
    rate = stats.lines_unrecognized / stats.lines_postfix
    kinds = Counter(event.kind for event in events)
    print(
        f"Postfix {version} ({suite}, {'-v on every service' if verbose else 'no -v'}): "
        f"{rate:.3%} unrecognized ({stats.lines_unrecognized}/{stats.lines_postfix} lines, "
        f"{kinds['verbose_trace']} verbose_trace)"
    )
    assert stats.lines_postfix == stats.lines_total > 0
    assert rate < LIMIT, stats.unrecognized_samples[:10]
    started = [e.fields["version"] for e in events if e.kind == "master_started"]
    assert started == [version]
    assert version.startswith(SUITES[suite] + ".")
    if verbose:
        assert kinds["verbose_trace"] > 100
