"""Postfix daemons as data: server skeleton, how max_idle/max_use apply, table checks.

Every row cites the Postfix 3.7.11 source (paths relative to ``postfix/`` at tag v3.7.11,
as collected in the team's postfix-facts.md sections 1, 3, 4 and 6). Inputs: none.
Outputs: :data:`DAEMONS` (name -> :class:`DaemonSpec`), :data:`SKELETONS`,
:data:`TIMINGS`, :func:`spec_for`. Errors: none (unknown daemons get a conservative
single-server row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Skeleton = Literal["single", "multi", "trigger", "event", "dgram", "master"]
TableCheck = Literal["next_accept", "per_trigger", "new_client", "every_10s", "drain", "never"]
Pickup = Literal["automatic", "slow", "reload", "restart"]


@dataclass(frozen=True, slots=True)
class SkeletonRule:
    """How one server skeleton arms its idle timer and counts uses."""

    idle: str
    idle_source: str
    use: str
    use_source: str


SKELETONS: dict[Skeleton, SkeletonRule] = {
    "single": SkeletonRule(
        "idle timer re-armed with the full max_idle after each connection closes",
        "src/master/single_server.c:312-313",
        "one use per completed connection; exit after the max_use-th, no log line",
        "src/master/single_server.c:310-311,810-821",
    ),
    "multi": SkeletonRule(
        "idle timer runs only while no client is connected",
        "src/master/multi_server.c:335-336,439-440",
        "one use per client disconnect; exit once >= max_use and no client connected",
        "src/master/multi_server.c:331-334,919",
    ),
    "trigger": SkeletonRule(
        "every trigger (including master wakeups) re-arms the idle timer",
        "src/master/trigger_server.c:288-289",
        "one use per trigger; exit after max_use triggers",
        "src/master/trigger_server.c:291-292,797",
    ),
    "event": SkeletonRule(
        "idle timer runs only while no client is connected",
        "src/master/event_server.c:366-367,455-456",
        "one use per client disconnect",
        "src/master/event_server.c:362-365,956",
    ),
    "dgram": SkeletonRule(
        "idle timer re-armed per datagram",
        "src/master/dgram_server.c:276-280",
        "one use per datagram",
        "src/master/dgram_server.c:276-280,653",
    ),
    "master": SkeletonRule("never idles", "src/master/master.c:102-104", "n/a", ""),
}


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    """One Postfix daemon program and the lifetime rules its processes follow."""

    name: str
    skeleton: Skeleton
    source: str
    idle_applies: bool = True
    use_applies: bool = True
    override_source: str = ""
    table_check: TableCheck = "never"
    table_check_source: str = ""
    pickup: Pickup = "automatic"
    pickup_source: str = ""
    long_lived: bool = False
    solitary: bool = False


def _single(name: str, source: str, check: bool, check_source: str = "") -> DaemonSpec:
    return DaemonSpec(
        name,
        "single",
        source,
        table_check="next_accept" if check else "never",
        table_check_source=check_source,
    )


_ROWS: tuple[DaemonSpec, ...] = (
    _single("smtpd", "src/smtpd/smtpd.c:6780", True, "src/smtpd/smtpd.c:6239-6247"),
    _single("smtp", "src/smtp/smtp.c:1635", True, "src/smtp/smtp.c:1589-1597"),
    _single("lmtp", "src/smtp/smtp.c:1635", True, "src/smtp/smtp.c:1589-1597"),
    _single("cleanup", "src/cleanup/cleanup.c:645", True, "src/cleanup/cleanup.c:613-621"),
    _single("local", "src/local/local.c:974", True, "src/local/local.c:853-861"),
    _single("virtual", "src/virtual/virtual.c:561", True, "src/virtual/virtual.c:457-465"),
    _single("pipe", "src/pipe/pipe.c:1387", True, "src/pipe/pipe.c:1343-1351"),
    _single("spawn", "src/spawn/spawn.c:367", True, "src/spawn/spawn.c:334-342"),
    _single("qmqpd", "src/qmqpd/qmqpd.c:857", True, "src/qmqpd/qmqpd.c:793-801"),
    _single("bounce", "src/bounce/bounce.c:704", False),
    _single("error", "src/error/error.c:263", False),
    _single("discard", "src/discard/discard.c:250", False),
    _single("showq", "src/showq/showq.c:434", False),
    _single("flush", "src/flush/flush.c:860", False),
    DaemonSpec(
        "dnsblog",
        "single",
        "src/dnsblog/dnsblog.c:313",
        use_applies=False,
        override_source="src/dnsblog/dnsblog.c:294 (use limit 0; retires after 18000/10000 s)",
        long_lived=True,
    ),
    DaemonSpec(
        "trivial-rewrite",
        "multi",
        "src/trivial-rewrite/trivial-rewrite.c:656",
        table_check="every_10s",
        table_check_source="src/trivial-rewrite/trivial-rewrite.c:539-548,599",
        pickup="slow",
        pickup_source="src/trivial-rewrite/trivial-rewrite.c:75-77",
    ),
    DaemonSpec(
        "proxymap",
        "multi",
        "src/proxymap/proxymap.c:844",
        table_check="new_client",
        table_check_source="src/proxymap/proxymap.c:786-794",
        pickup="slow",
        pickup_source="src/proxymap/proxymap.c:145-148",
    ),
    DaemonSpec(
        "anvil",
        "multi",
        "src/anvil/anvil.c:1039",
        use_applies=False,
        override_source="src/anvil/anvil.c:998-1004 (use 0, idle >= anvil_rate_time_unit)",
        pickup="slow",
        pickup_source="src/anvil/anvil.c:198-201",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "scache",
        "multi",
        "src/scache/scache.c:579",
        use_applies=False,
        override_source="src/scache/scache.c:538",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "verify",
        "multi",
        "src/verify/verify.c:767",
        override_source="src/verify/verify.c:643-646 (volatile map: use 0, idle 0)",
        pickup="slow",
        pickup_source="src/verify/verify.c:75-78 (man page: use postfix reload); with a "
        "persistent address_verify_map it idles out like any multi-server",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "tlsmgr",
        "multi",
        "src/tlsmgr/tlsmgr.c:1091",
        idle_applies=False,
        use_applies=False,
        override_source="src/tlsmgr/tlsmgr.c:992-993",
        pickup="reload",
        pickup_source="src/tlsmgr/tlsmgr.c:60-62",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "qmgr",
        "trigger",
        "src/qmgr/qmgr.c:815",
        idle_applies=False,
        use_applies=False,
        override_source="src/qmgr/qmgr.c:741-742",
        table_check="per_trigger",
        table_check_source="src/qmgr/qmgr.c:680-688",
        pickup="reload",
        pickup_source="src/qmgr/qmgr.c:148-151",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "oqmgr",
        "trigger",
        "src/oqmgr/qmgr.c:724",
        idle_applies=False,
        use_applies=False,
        override_source="src/oqmgr/qmgr.c:658-659",
        table_check="per_trigger",
        table_check_source="src/oqmgr/qmgr.c:607-615",
        pickup="reload",
        pickup_source="src/oqmgr/qmgr.c:144-147",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "pickup",
        "trigger",
        "src/pickup/pickup.c:625",
        pickup="slow",
        pickup_source="src/pickup/pickup.c:40-42 (master wakeup every 60 s: <= ~100 min)",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "postscreen",
        "event",
        "src/postscreen/postscreen.c:1236",
        use_applies=False,
        override_source="src/postscreen/postscreen.c:1017",
        table_check="drain",
        table_check_source="src/postscreen/postscreen.c:978-996",
        pickup="reload",
        pickup_source="src/postscreen/postscreen.c:89-92",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "tlsproxy",
        "event",
        "src/tlsproxy/tlsproxy.c:1923",
        override_source="src/master/event_server.c:808-815 (retires after 10000 s by default)",
        pickup="reload",
        pickup_source="src/tlsproxy/tlsproxy.c:53-56",
        long_lived=True,
    ),
    DaemonSpec(
        "postlogd",
        "dgram",
        "src/postlogd/postlogd.c:260",
        use_applies=False,
        override_source="src/postlogd/postlogd.c:233",
        long_lived=True,
        solitary=True,
    ),
    DaemonSpec(
        "master",
        "master",
        "src/master/master.c:102-104",
        idle_applies=False,
        use_applies=False,
        pickup="reload",
        pickup_source="src/master/master.c:102-104",
        long_lived=True,
        solitary=True,
    ),
)

DAEMONS: dict[str, DaemonSpec] = {row.name: row for row in _ROWS}

ALIASES: dict[str, str] = {
    # binaries that run under another name (postfix-param-readers.json "aliases")
    "defer": "bounce",
    "trace": "bounce",
    "retry": "error",
    "proxywrite": "proxymap",
    "relay": "smtp",
    "nqmgr": "qmgr",
}

# One-shot programs (postfix-param-readers.json "commands"): they run and exit; they are
# not daemons with idle or use limits and never hold an old configuration for long.
COMMANDS: frozenset[str] = frozenset(
    {
        "sendmail",
        "postdrop",
        "postqueue",
        "postfix",
        "postmulti",
        "postlog",
        "postsuper",
        "postmap",
        "postalias",
        "postcat",
        "postkick",
        "postlock",
        "posttls-finger",
        "postconf",
        "smtp-sink",
        "smtp-source",
        "qmqp-sink",
        "qmqp-source",
    }
)

# Timings that delay or bound when an edit reaches a process.
TIMINGS: dict[str, tuple[float, str]] = {
    "max_idle_default": (100.0, "src/global/mail_params.c:842 (postconf -d: 100s)"),
    "max_use_default": (100.0, "src/global/mail_params.c:817 (postconf -d: 100)"),
    "ipc_idle_default": (5.0, "src/global/mail_params.c:844; src/global/clnt_stream.c:174-182"),
    "ipc_ttl_default": (1000.0, "src/global/mail_params.c:845; src/global/clnt_stream.c:226-242"),
    "anvil_rate_time_unit": (60.0, "src/anvil/anvil.c:998-1004"),
    "trivial_rewrite_table_check": (10.0, "src/trivial-rewrite/trivial-rewrite.c:539-548"),
    "rewrite_client_cache": (30.0, "src/global/rewrite_clnt.c:184; resolve_clnt.c:198-205"),
    "retire_default": (10000.0, "src/master/single_server.c:670-678 (100 x 100 s)"),
    "pickup_wakeup": (60.0, "conf/master.cf wakeup field; src/pickup/pickup.c:40-42"),
    # a timer is due in a whole second (when = time() + delay), the event loop sleeps whole
    # seconds, and on waking runs every due timer (when <= time()) before the I/O events:
    # a connection in the second an idle timer is due finds the process exiting
    "timer_granularity": (
        1.0,
        "src/util/events.c:912,922,937 (when); :1044-1046,486-488 (sleep); :1125-1142 (order)",
    ),
}

# Daemons that talk to trivial-rewrite through rewrite_clnt/resolve_clnt and drop the
# connection after ipc_idle (src/global/rewrite_clnt.c:141-144; resolve_clnt.c:228-231).
# Only those that really call it (Postfix 3.7): smtpd resolves recipients and senders
# (src/smtpd/smtpd_resolve.c:122-124), cleanup rewrites addresses
# (src/cleanup/cleanup_rewrite.c:87), qmgr resolves each recipient when a message enters
# the active queue (src/qmgr/qmgr_message.c:1041, after the from= line of :659), local
# resolves forwarded and aliased addresses (src/local/resolve.c:113-114). The smtp and
# lmtp clients use a surrogate that never contacts it (src/smtp/smtp_map11.c:150);
# virtual, pipe, error, discard and bounce make no such call; pickup and qmqpd hand
# messages to cleanup, which makes the calls (and logs them).
REWRITE_CLIENTS: frozenset[str] = frozenset({"smtpd", "cleanup", "qmgr", "oqmgr", "local"})
QMGRS: frozenset[str] = frozenset({"qmgr", "oqmgr"})
# Delivery agents get a message only after qmgr resolved it: a line of theirs for a queue
# id whose qmgr lines are not in the log (an excerpt, filtered logs) stands in for qmgr's
# request, at its own time (no earlier than the real request: a conservative estimate).
RESOLVED_BEFORE: frozenset[str] = frozenset(
    {"virtual", "smtp", "lmtp", "pipe", "error", "discard", "bounce"}
)

# smtpd caches resolve replies for its whole lifetime (src/smtpd/smtpd_resolve.c:146-162;
# smtpd_check.c:868-872): an smtpd started before trivial-rewrite restarted may keep
# answering RCPT checks from the old routing.
RESOLVE_CACHE_HOLDERS: frozenset[str] = frozenset({"smtpd"})


_RESOLVED: dict[str, DaemonSpec] = {}
"""Rows already looked up by the name a process logs under (the engine asks per event)."""


def spec_for(daemon: str) -> DaemonSpec:
    """The row for a daemon (aliases resolved); unknown names are treated as single-server."""
    found = _RESOLVED.get(daemon)
    if found is None:
        name = ALIASES.get(daemon, daemon)
        found = DAEMONS.get(name) or DaemonSpec(
            name, "single", "unknown daemon: assumed single_server skeleton"
        )
        if len(_RESOLVED) < 4096:
            _RESOLVED[daemon] = found
    return found
