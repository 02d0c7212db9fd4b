"""Client-side caches of trivial-rewrite's answers that outlive trivial-rewrite's exit.

A routing or address-class edit (``virtual_mailbox_domains``, ``relay_domains``,
``transport_maps``, ...) reaches most daemons only through trivial-rewrite's answers. When
the old trivial-rewrite exits, its clients may still hold answers it gave: the rewrite and
resolve clients reuse the last reply for the same request for 30 s, and smtpd keeps an LRU
cache of resolve replies for its whole life. Each row cites the Postfix 3.7.11 source.
Inputs: none. Outputs: :data:`CLIENT_CACHES`, :func:`reply_reuse_seconds`,
:func:`lifetime_holders`. Errors: none.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClientCache:
    """One cache of trivial-rewrite answers held in a client process."""

    name: str
    holders: frozenset[str]
    """Daemons whose processes hold the cache (resolved daemon names)."""
    lifetime: float | None
    """Seconds a cached answer may be reused; None = for the rest of the process' life."""
    what: str
    source: str


CLIENT_CACHES: tuple[ClientCache, ...] = (
    ClientCache(
        "rewrite_clnt",
        frozenset({"cleanup", "smtpd", "qmgr", "oqmgr", "local"}),
        30.0,
        "reuses the last rewrite reply for the same request for 30 s",
        "src/global/rewrite_clnt.c:184",
    ),
    ClientCache(
        "resolve_clnt",
        frozenset({"qmgr", "oqmgr", "smtpd", "cleanup", "local"}),
        30.0,
        "reuses the last resolve reply (transport, next hop, address class) for the same "
        "address for 30 s",
        "src/global/resolve_clnt.c:198-205,293",
    ),
    ClientCache(
        "smtpd_resolve",
        frozenset({"smtpd"}),
        None,
        "keeps an LRU cache of 100 resolve replies for the whole smtpd process lifetime "
        "(it persists across SMTP sessions); recipient validation "
        "(reject_unauth_destination, reject_unlisted_recipient) decides from it",
        "src/smtpd/smtpd_resolve.c:146-162; src/smtpd/smtpd_check.c:868-872",
    ),
)


def reply_reuse_seconds() -> float:
    """The longest time-bounded reuse of an old answer (30 s)."""
    return max(c.lifetime for c in CLIENT_CACHES if c.lifetime is not None)


def timed_caches() -> tuple[ClientCache, ...]:
    """Caches whose answers expire after a fixed time."""
    return tuple(c for c in CLIENT_CACHES if c.lifetime is not None)


def lifetime_holders() -> frozenset[str]:
    """Daemons that keep old answers until the process exits (smtpd)."""
    return frozenset(d for c in CLIENT_CACHES if c.lifetime is None for d in c.holders)


def lifetime_cache(daemon: str) -> ClientCache | None:
    """The process-lifetime cache ``daemon`` holds, if any."""
    return next((c for c in CLIENT_CACHES if c.lifetime is None and daemon in c.holders), None)
