"""The stock master.cf services, for when no configuration directory is given.

Rows follow Postfix 3.7.11's conf/master.cf as shipped by Debian (postfix 3.7.11-0+deb12u1),
without the commented-out and pipe(8) example services; the active services are the same in
every release from 3.5.27 to 3.10.13 (scripts/gen_release_readers.py compares them).
Inputs: default limits. Outputs: :func:`default_services` as
:class:`~pfwatch.events.ServiceFacts`. Errors: none.
"""

from __future__ import annotations

from pfwatch.events import ServiceFacts
from pfwatch.knowledge.daemons import TIMINGS

MAX_IDLE = TIMINGS["max_idle_default"][0]
MAX_USE = int(TIMINGS["max_use_default"][0])
PROCESS_LIMIT = int(TIMINGS["process_limit_default"][0])

# name, type, command, process limit (-1 = default_process_limit), wakeup seconds
_STOCK: tuple[tuple[str, str, str, int, int], ...] = (
    ("smtp", "inet", "smtpd", -1, 0),
    ("pickup", "unix", "pickup", 1, 60),
    ("cleanup", "unix", "cleanup", 0, 0),
    ("qmgr", "unix", "qmgr", 1, 300),
    ("tlsmgr", "unix", "tlsmgr", 1, 1000),
    ("rewrite", "unix", "trivial-rewrite", -1, 0),
    ("bounce", "unix", "bounce", 0, 0),
    ("defer", "unix", "bounce", 0, 0),
    ("trace", "unix", "bounce", 0, 0),
    ("verify", "unix", "verify", 1, 0),
    ("flush", "unix", "flush", 0, 1000),
    ("proxymap", "unix", "proxymap", -1, 0),
    ("proxywrite", "unix", "proxymap", 1, 0),
    ("smtp", "unix", "smtp", -1, 0),
    ("relay", "unix", "smtp", -1, 0),
    ("showq", "unix", "showq", -1, 0),
    ("error", "unix", "error", -1, 0),
    ("retry", "unix", "error", -1, 0),
    ("discard", "unix", "discard", -1, 0),
    ("local", "unix", "local", -1, 0),
    ("virtual", "unix", "virtual", -1, 0),
    ("lmtp", "unix", "lmtp", -1, 0),
    ("anvil", "unix", "anvil", 1, 0),
    ("scache", "unix", "scache", 1, 0),
    ("postlog", "unix-dgram", "postlogd", 1, 0),
)


def default_services(
    max_idle: float = MAX_IDLE, max_use: int = MAX_USE
) -> tuple[ServiceFacts, ...]:
    """The stock services with the given global limits (no ``-o`` overrides)."""
    return tuple(
        ServiceFacts(
            name=name,
            type=kind,
            daemon=daemon,
            max_idle=max_idle,
            max_use=max_use,
            process_limit=limit if limit >= 0 else PROCESS_LIMIT,
            wakeup=wakeup,
            syslog_name="",
        )
        for name, kind, daemon, limit, wakeup in _STOCK
    )
