"""The Postfix message catalogue as data: which log messages mean what.

Each :class:`Row` names an event kind (``LogEvent.kind``), the daemons that log it
(``("*",)`` = any Postfix program), the first words it may start with (used to dispatch
cheaply; ``()`` = tried after the word lookup failed), a regular expression matched at
the start of the message, the named groups that become ``LogEvent.fields`` and the
Postfix 3.7.11 source location of the format string. Order matters: within one first word
the first matching row wins, so specific rows precede catch-alls. The generated
``verbose_trace`` rows of :mod:`grammars.maillog_verbose` (every ``msg_verbose``-guarded
``msg_info`` format of Postfix 3.5 to 3.10 that starts with a literal word) come last and
cite the newest release that has them. Inputs: none. Outputs:
``CATALOGUE`` and ``POSTFIX_PROGRAMS``. Errors: none; compiled by
:mod:`pfwatch.maillog.classify` (a unit test checks fields against the named groups).
"""

from __future__ import annotations

from typing import NamedTuple

from pfwatch.grammars.maillog_verbose import FORMATS as VERBOSE_FORMATS


class Row(NamedTuple):
    """One message format: kind, daemons, first words, regex, fields, source location."""

    kind: str
    daemons: tuple[str, ...]
    first_words: tuple[str, ...]
    pattern: str
    fields: tuple[str, ...]
    source: str


ANY = ("*",)
SESSION_DAEMONS = ("smtpd", "qmqpd")
W = "warning:"
_TABLE = r"(?P<table>(?P<type>[\w-]+):(?P<path>[^(\s]*)\S*)"
_CHILD = r"(?P<path>\S*?(?P<child_daemon>[^/\s]+))"
_PEER = r"\[[^\]]*\]:\d+"
_CLIENT = r"[^\s\[]*\[[^\]]*\](?::\d+)?"

POSTFIX_PROGRAMS: frozenset[str] = frozenset(
    [
        "anvil",
        "bounce",
        "cleanup",
        "discard",
        "dnsblog",
        "error",
        "flush",
        "lmtp",
        "local",
        "master",
        "nqmgr",
        "oqmgr",
        "pickup",
        "pipe",
        "postlogd",
        "postscreen",
        "proxymap",
        "proxywrite",
        "qmgr",
        "qmqpd",
        "scache",
        "showq",
        "smtp",
        "smtpd",
        "spawn",
        "tlsmgr",
        "tlsproxy",
        "trivial-rewrite",
        "verify",
        "virtual",
        "relay",
        "retry",
        "defer",
        "trace",
        "postfix",
        "postfix-script",
        "postfix-tls-script",
        "postmulti-script",
        "postalias",
        "postcat",
        "postconf",
        "postdrop",
        "postkick",
        "postlock",
        "postlog",
        "postmap",
        "postmulti",
        "postqueue",
        "postsuper",
        "sendmail",
        "mailq",
        "newaliases",
        "posttls-finger",
        "smtp-sink",
        "smtp-source",
        "qmqp-sink",
        "qmqp-source",
    ]
)
"""Program names Postfix logs under (conf/postfix-files: daemon_directory and
command_directory entries, plus the master.cf service names relay/retry/defer/trace that
run as ``-n name`` and log under their service name when syslog_name says so)."""

CATALOGUE: tuple[Row, ...] = (
    # --- master (tag postfix/master) ----------------------------------------------------
    Row(
        "master_started",
        ("master",),
        ("daemon",),
        r"daemon started -- version (?P<version>[^\s,]+)(?:, configuration (?P<config_dir>.*))?$",
        ("version", "config_dir"),
        "src/master/master.c:550",
    ),
    Row(
        "master_reloaded",
        ("master",),
        ("reload",),
        r"reload -- version (?P<version>[^\s,]+)(?:, configuration (?P<config_dir>.*))?$",
        ("version", "config_dir"),
        "src/master/master.c:583",
    ),
    Row(
        "master_stopped",
        ("master",),
        ("terminating",),
        r"terminating on signal (?P<signal>\d+)",
        ("signal",),
        "src/master/master_sig.c:205",
    ),
    Row(
        "master_exit_time",
        ("master",),
        ("master",),
        r"master exit time has arrived",
        (),
        "src/master/master.c:255",
    ),
    Row(
        "status_ignored",
        ("master",),
        ("ignoring",),
        r"ignoring status update from child pid (?P<child_pid>\d+) generation (?P<generation>\d+)",
        ("child_pid", "generation"),
        "src/master/master_status.c:117",
    ),
    Row(
        "child_exit_status",
        ("master",),
        (W,),
        rf"warning: process {_CHILD} pid (?P<child_pid>\d+) exit status (?P<status>\d+)",
        ("path", "child_daemon", "child_pid", "status"),
        "src/master/master_spawn.c:332",
    ),
    Row(
        "child_killed",
        ("master",),
        (W,),
        rf"warning: process {_CHILD} pid (?P<child_pid>\d+) killed by signal (?P<signal>\d+)",
        ("path", "child_daemon", "child_pid", "signal"),
        "src/master/master_spawn.c:335",
    ),
    Row(
        "child_stopped",
        ("master",),
        (W,),
        rf"warning: process {_CHILD} pid (?P<child_pid>\d+) stopped by signal (?P<signal>\d+)",
        ("path", "child_daemon", "child_pid", "signal"),
        "src/master/master_spawn.c:327",
    ),
    Row(
        "bad_command_startup",
        ("master",),
        (W,),
        rf"warning: {_CHILD}: bad command startup -- throttling",
        ("path", "child_daemon"),
        "src/master/master_spawn.c:340",
    ),
    Row(
        "process_limit",
        ("master",),
        (W,),
        r'warning: service "(?P<service_name>[^"]*)" \((?P<endpoint>[^)]*)\) has reached '
        r'its process limit "(?P<limit>\d+)"',
        ("service_name", "endpoint", "limit"),
        "src/master/master_avail.c:155",
    ),
    Row(
        "process_limit_hint",
        ("master",),
        (W,),
        r"warning: to avoid this condition, increase the process count in master\.cf",
        (),
        "src/master/master_avail.c:158",
    ),
    Row(
        "process_limit_hint",
        ("master",),
        (W,),
        # http in 3.5 to 3.9, https from 3.10 (scripts/gen_catalogue_sites.py found it)
        r"warning: see https?://www\.postfix\.org/STRESS_README\.html for examples",
        (),
        "src/master/master_avail.c:160",
    ),
    Row(
        "inet_interfaces_ignored",
        ("master",),
        (W,),
        r"warning: service (?P<service_name>\S+): ignoring inet_interfaces change",
        ("service_name",),
        "src/master/master_ent.c:351",
    ),
    Row(
        "inet_interfaces_hint",
        ("master",),
        (W,),
        r"warning: to change inet_interfaces, stop and start Postfix",
        (),
        "src/master/master_ent.c:353",
    ),
    Row(
        "parameter_change_ignored",
        ("master",),
        (W,),
        r"warning: ignoring (?P<parameter>\S+) parameter value change",
        ("parameter",),
        "src/master/master_watch.c:91",
    ),
    Row(
        "parameter_change_values",
        ("master",),
        (W,),
        r'warning: old value: "(?P<old>.*)", new value: "(?P<new>.*)"$',
        ("old", "new"),
        "src/master/master_watch.c:92",
    ),
    Row(
        "parameter_change_hint",
        ("master",),
        (W,),
        r"warning: to change (?P<parameter>\S+), stop and start Postfix",
        ("parameter",),
        "src/master/master_watch.c:94",
    ),
    Row(
        "duplicate_master_entry",
        ("master",),
        (W,),
        r'warning: duplicate master\.cf entry for service "(?P<service_name>[^"]*)"',
        ("service_name",),
        "src/master/master_conf.c:132",
    ),
    # --- postfix-script (tag postfix/postfix-script) ------------------------------------
    Row(
        "script_starting",
        ("postfix-script",),
        ("starting",),
        r"starting the Postfix mail system",
        (),
        "conf/postfix-script:142",
    ),
    Row(
        "script_stopping_force",
        ("postfix-script",),
        (W, "stopping"),
        r"(?:warning: )?stopping the Postfix mail system with force",
        (),
        "conf/postfix-script:202",
    ),
    Row(
        "script_stopping",
        ("postfix-script",),
        ("stopping",),
        r"stopping the Postfix mail system$",
        (),
        "conf/postfix-script:194",
    ),
    Row(
        "script_refreshing",
        ("postfix-script",),
        ("refreshing",),
        r"refreshing the Postfix mail system",
        (),
        "conf/postfix-script:223",
    ),
    Row(
        "script_aborting",
        ("postfix-script",),
        ("aborting",),
        r"aborting the Postfix mail system",
        (),
        "conf/postfix-script:213",
    ),
    Row(
        "script_waiting",
        ("postfix-script",),
        ("waiting",),
        r"waiting for the Postfix mail system to terminate",
        (),
        "conf/postfix-script:199",
    ),
    Row(
        "script_running",
        ("postfix-script",),
        ("the",),
        r"the Postfix mail system is running: PID: (?P<master_pid>\d+)",
        ("master_pid",),
        "conf/postfix-script:251",
    ),
    Row(
        "script_not_running",
        ("postfix-script",),
        ("the",),
        r"the Postfix mail system is not running",
        (),
        "conf/postfix-script:248",
    ),
    # --- every daemon: lookup tables ---------------------------------------------------
    Row(
        "table_changed",
        ANY,
        ("table",),
        rf"table {_TABLE} has changed -- restarting",
        ("table", "type", "path"),
        "src/smtpd/smtpd.c:6244",
    ),
    Row(
        "table_changed_draining",
        ANY,
        ("table",),
        rf"table {_TABLE} has changed - finishing in the background",
        ("table", "type", "path"),
        "src/postscreen/postscreen.c:991",
    ),
    Row(
        "database_older",
        ANY,
        (W,),
        r"warning: database (?P<database>.+) is older than source file (?P<source>.+)$",
        ("database", "source"),
        "src/util/dict_db.c:804",
    ),
    Row(
        "table_unavailable",
        ANY,
        (W,),
        r"warning: (?P<table>[\w-]+:\S+) is unavailable\. ",
        ("table",),
        "src/util/dict_surrogate.c:81",
    ),
    Row(
        "open_database_error",
        ANY,
        ("error:", "fatal:"),
        r"(?:error|fatal): open database (?P<database>.+?): ",
        ("database",),
        "src/util/dict_db.c:699",
    ),
    # --- every daemon: skeleton -v lines -------------------------------------------------
    Row(
        "verbose_idle_timeout",
        ANY,
        ("idle",),
        r"idle timeout -- exiting",
        (),
        "src/master/single_server.c:269",
    ),
    Row(
        "verbose_master_disconnect",
        ANY,
        ("master",),
        r"master disconnect -- (?P<mode>exiting|draining)",
        ("mode",),
        "src/master/single_server.c:260",
    ),
    Row(
        "verbose_retire",
        ANY,
        ("time",),
        r"time to retire -- (?P<mode>exiting|draining)",
        ("mode",),
        "src/master/single_server.c:251",
    ),
    Row(
        "verbose_process_generation",
        ANY,
        ("process",),
        r"process generation: (?P<generation>\d+)",
        ("generation",),
        "src/master/single_server.c:716",
    ),
    Row(
        "verbose_master_notify",
        ANY,
        ("master_notify:",),
        r"master_notify: status (?P<status>\d+)",
        ("status",),
        "src/master/master_proto.c:86",
    ),
    Row(
        "verbose_connection_established",
        ANY,
        ("connection",),
        r"connection established(?: fd \d+)?$",
        (),
        "src/master/single_server.c:288",
    ),
    Row(
        "verbose_connection_closed",
        ANY,
        ("connection",),
        r"connection closed(?: fd \d+)?$",
        (),
        "src/master/single_server.c:308",
    ),
    Row(
        "verbose_daemon_started",
        ANY,
        ("daemon",),
        r"daemon started$",
        (),
        "src/master/single_server.c:494",
    ),
    # --- smtpd / qmqpd sessions ---------------------------------------------------------
    Row(
        "session_connect",
        SESSION_DAEMONS,
        ("connect",),
        r"connect from (?P<client>\S+)",
        ("client",),
        "src/smtpd/smtpd.c:6181",
    ),
    Row(
        "session_disconnect",
        SESSION_DAEMONS,
        ("disconnect",),
        # greedy with a fallback: the lazy form with an optional group is 4x slower
        r"disconnect from (?P<client>\S+)(?: (?P<stats>.*commands=(?P<commands>[\d/]+)|.*))?$",
        ("client", "stats", "commands"),
        "src/smtpd/smtpd.c:6230",
    ),
    Row(
        "session_abort",
        SESSION_DAEMONS,
        ("timeout", "lost", "too"),
        r"(?P<reason>timeout|lost connection|too many errors) after (?P<after>.+?)"
        r"(?: \((?P<bytes>\d+) bytes\))? from (?P<client>\S+)$",
        ("reason", "after", "bytes", "client"),
        "src/smtpd/smtpd.c:6012",
    ),
    Row(
        "session_pipelining",
        ("smtpd",),
        ("improper",),
        rf"improper command pipelining after (?P<after>\S+) from (?P<client>{_CLIENT})",
        ("after", "client"),
        "src/smtpd/smtpd.c:5549",
    ),
    Row(
        "noqueue",
        ANY,
        ("NOQUEUE:",),
        r"NOQUEUE:(?: (?P<text>.*))?$",
        ("text",),
        "src/smtpd/smtpd_check.c:1006",
    ),
    Row(
        "ehlo_discard",
        ANY,
        ("discarding",),
        r"discarding EHLO keywords: (?P<keywords>.*)",
        ("keywords",),
        "src/smtpd/smtpd.c:1975",
    ),
    # --- TLS (smtpd, smtp, lmtp, tlsproxy) ----------------------------------------------
    Row(
        "tls_connection",
        ANY,
        ("Anonymous", "Verified", "Trusted", "Untrusted"),
        r"(?P<trust>Anonymous|Verified|Trusted|Untrusted) TLS connection "
        rf"(?P<usage>established|reused) (?P<direction>from|to) (?P<peer>{_CLIENT}|\S+?):? ",
        ("trust", "usage", "direction", "peer"),
        "src/tls/tls_misc.c:1187",
    ),
    Row(
        "tls_setup",
        ANY,
        ("setting",),
        r"setting up TLS connection (?P<direction>from|to) (?P<peer>\S+)",
        ("direction", "peer"),
        "src/tls/tls_server.c:828",
    ),
    Row(
        "tls_error",
        ANY,
        ("SSL_accept",),
        rf"SSL_accept error from (?P<peer>{_CLIENT}|\S+?): ",
        ("peer",),
        "src/tls/tls_server.c:927",
    ),
    Row(
        "tls_error",
        ANY,
        ("SSL_connect",),
        rf"SSL_connect error to (?P<peer>{_CLIENT}|\S+?): ",
        ("peer",),
        "src/tls/tls_client.c:1155",
    ),
    Row(
        "tls_verify_failed",
        ANY,
        ("certificate",),
        r"certificate verification failed for (?P<peer>\S+?): ",
        ("peer",),
        "src/tls/tls_verify.c:211",
    ),
    Row(
        "tls_offered",
        ("smtp", "lmtp", "relay", "retry"),
        ("Host",),
        r"Host offered STARTTLS: \[(?P<peer>[^\]]*)\]",
        ("peer",),
        "src/smtp/smtp_proto.c:755",
    ),
    # --- smtp / lmtp delivery agents ----------------------------------------------------
    Row(
        "delivery_connect_error",
        ("smtp", "lmtp", "relay", "retry"),
        ("connect",),
        rf"connect to (?P<peer>{_CLIENT}|\S+?): (?P<text>.*)",
        ("peer", "text"),
        "src/smtp/smtp_connect.c:332",
    ),
    # --- postscreen / tlsproxy / dnsblog ------------------------------------------------
    Row(
        "postscreen_connect",
        ("postscreen",),
        ("CONNECT",),
        rf"CONNECT from (?P<client>{_PEER}) to (?P<server>{_PEER})",
        ("client", "server"),
        "src/postscreen/postscreen.c:717",
    ),
    Row(
        "postscreen_pass",
        ("postscreen",),
        ("PASS",),
        rf"PASS (?P<verdict>NEW|OLD) (?P<client>{_PEER})",
        ("verdict", "client"),
        "src/postscreen/postscreen_misc.c:113",
    ),
    Row(
        "postscreen_disconnect",
        ("postscreen",),
        ("DISCONNECT",),
        rf"DISCONNECT (?P<client>{_PEER})",
        ("client",),
        "src/postscreen/postscreen_misc.c:139",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("HANGUP",),
        rf"(?P<text>HANGUP after \S+ from {_PEER} in .*)",
        ("text",),
        "src/postscreen/postscreen_misc.c:159",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("ALLOWLISTED", "WHITELISTED", "DENYLISTED", "BLACKLISTED"),
        rf"(?P<text>(?:ALLOW|WHITE|DENY|BLACK)LISTED {_PEER})",
        ("text",),
        "src/postscreen/postscreen.c:764",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("ALLOWLIST", "WHITELIST"),
        rf"(?P<text>(?:ALLOW|WHITE)LIST VETO {_PEER})",
        ("text",),
        "src/postscreen/postscreen.c:856",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("PREGREET",),
        rf"(?P<text>PREGREET \d+ after \S+ from {_PEER}: .*)",
        ("text",),
        "src/postscreen/postscreen_early.c:246",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("DNSBL",),
        rf"(?P<text>DNSBL rank \d+ for {_PEER})",
        ("text",),
        "src/postscreen/postscreen_early.c:183",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("COMMAND",),
        rf"(?P<text>COMMAND (?:TIME|COUNT|LENGTH) LIMIT from {_PEER} after .*)",
        ("text",),
        "src/postscreen/postscreen_smtpd.c:726",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("COMMAND",),
        rf"(?P<text>COMMAND PIPELINING from {_PEER} after .*)",
        ("text",),
        "src/postscreen/postscreen_smtpd.c:1056",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("BARE",),
        rf"(?P<text>BARE NEWLINE from {_PEER} after .*)",
        ("text",),
        "src/postscreen/postscreen_smtpd.c:884",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("NON-SMTP",),
        rf"(?P<text>NON-SMTP COMMAND from {_PEER} after .*)",
        ("text",),
        "src/postscreen/postscreen_smtpd.c:1017",
    ),
    Row(
        "postscreen_verdict",
        ("postscreen",),
        ("DATA", "BDAT"),
        rf"(?P<text>(?:DATA|BDAT) without valid RCPT from {_PEER})",
        ("text",),
        "src/postscreen/postscreen_smtpd.c:596",
    ),
    Row(
        "tlsproxy_connect",
        ("tlsproxy",),
        ("CONNECT",),
        r"CONNECT (?P<direction>from|to) (?P<peer>\S+)",
        ("direction", "peer"),
        "src/tlsproxy/tlsproxy.c:1410",
    ),
    Row(
        "tlsproxy_disconnect",
        ("tlsproxy",),
        ("DISCONNECT",),
        r"DISCONNECT (?P<peer>\S+)",
        ("peer",),
        "src/tlsproxy/tlsproxy_state.c:149",
    ),
    Row(
        "dnsblog_listed",
        ("dnsblog",),
        ("addr",),
        r"addr (?P<addr>\S+) listed by domain (?P<domain>\S+) as (?P<reply>\S+)",
        ("addr", "domain", "reply"),
        "src/dnsblog/dnsblog.c:217",
    ),
    # --- statistics and caches (logged on exit: proof that a process ended) -------------
    Row(
        "anvil_statistics",
        ("anvil",),
        ("statistics:",),
        r"statistics: max (?:\w+ rate \d+/\d+s|\w+ count \d+) for \(",
        (),
        "src/anvil/anvil.c:500",
    ),
    Row(
        "anvil_statistics",
        ("anvil",),
        ("statistics:",),
        r"statistics: max cache size \d+ at ",
        (),
        "src/anvil/anvil.c:898",
    ),
    Row(
        "scache_statistics",
        ("scache",),
        ("statistics:",),
        r"statistics: (?:start interval|domain lookup|address lookup|max simultaneous) ",
        (),
        "src/scache/scache.c:477",
    ),
    Row(
        "cache_cleanup",
        ANY,
        ("cache",),
        r"cache (?P<table>\S+) (?P<mode>full|partial) cleanup: retained=\d+ dropped=\d+",
        ("table", "mode"),
        "src/util/dict_cache.c:456",
    ),
    # --- administrative commands --------------------------------------------------------
    Row(
        "postsuper_summary",
        ("postsuper",),
        ("Deleted:", "Requeued:", "Placed", "Released"),
        r"(?P<action>Deleted|Requeued|Placed on hold|Released from hold): (?P<count>\d+) "
        r"messages?",
        ("action", "count"),
        "src/postsuper/postsuper.c:1584",
    ),
    # --- catch-alls (tried last within their first word) --------------------------------
    Row(
        "diagnostic",
        ANY,
        ("warning:", "error:", "fatal:", "panic:"),
        r"(?P<severity>warning|error|fatal|panic):(?: (?P<text>.*))?$",
        ("severity", "text"),
        "src/util/msg_logger.c:222",
    ),
    # --- no fixed first word: tried in this order when the word lookup found nothing ----
    Row(
        "message_activity",
        ANY,
        (),
        r"(?P<queue_id>[0-9A-F]{5,16}|(?=[0-9A-Za-z]*\d)[0-9A-Za-z]{6,20}):(?: |$)",
        ("queue_id",),
        "src/smtpd/smtpd.c:2354",
    ),
    # -v traces: Postfix prefixes most debug lines with the function name ("myname: ")
    Row("verbose_trace", ANY, (), r"[a-z][\w.-]*: ", (), "src/util/match_ops.c:119"),
    Row("verbose_trace", ANY, (), r"[<>] \S+: ", (), "src/smtpd/smtpd_chat.c:249"),
    Row("verbose_trace", ANY, (), r"send attr ", (), "src/util/attr_print0.c:161"),
    Row("verbose_trace", ANY, (), r"connect to subsystem ", (), "src/global/mail_connect.c:93"),
    Row(
        "verbose_trace", ANY, (), r"input attribute (?:name|value)", (), "src/util/attr_scan0.c:353"
    ),
    Row(
        "verbose_trace",
        ANY,
        (),
        r"\S+(?: socket)?: wanted attribute: ",
        (),
        "src/util/attr_scan0.c:350",
    ),
    Row("verbose_trace", ANY, (), r"\S+ stream disconnect$", (), "src/global/clnt_stream.c:200"),
    # trivial-rewrite -v: one line per rewrite and per resolve request it answers
    Row(
        "verbose_trace",
        ("trivial-rewrite",),
        (),
        r"`[^']*' `.*' -> `.*'$",
        (),
        "src/trivial-rewrite/rewrite.c:281",
    ),
    Row(
        "verbose_trace",
        ("trivial-rewrite",),
        (),
        r"`.*' -> `.*' -> \(`[^']*' `.*' `.*' `-?\d+'\)$",
        (),
        "src/trivial-rewrite/resolve.c:778",
    ),
    Row(
        "verbose_trace", ANY, (), r">>> (?:START|END|CHECKING) ", (), "src/smtpd/smtpd_check.c:4223"
    ),
    Row(
        "verbose_trace",
        ANY,
        (),
        r"(?:initial|extracted) envelope ",
        (),
        "src/cleanup/cleanup_envelope.c:135",
    ),
    Row(
        "verbose_trace",
        ANY,
        (),
        r"(?:before|after) \w+: cleanup flags = ",
        (),
        "src/global/input_transp.c:90",
    ),
    Row(
        "verbose_trace", ANY, (), r"database \S+: using size limit ", (), "src/util/dict_lmdb.c:508"
    ),
    Row("verbose_trace", ANY, (), r"[a-z][a-z0-9_]* = \S", (), "src/smtpd/smtpd_check.c:984"),
    Row(
        "verbose_trace",
        ANY,
        (),
        r"(?:open|close) (?:incoming|active|deferred|maildrop|hold)/",
        (),
        "src/global/mail_stream.c:420",
    ),
    Row("verbose_trace", ANY, (), r"cleanup flags = ", (), "src/cleanup/cleanup_api.c:202"),
    # the format ends in "\n", which Postfix logs as "?" (src/util/dict_db.c:653-656)
    Row(
        "verbose_trace",
        ANY,
        ("Compiled",),
        r"Compiled against Berkeley DB(?:: [\d.]+| version \d)",
        (),
        "src/util/dict_db.c:653",
    ),
    Row(
        "verbose_trace",
        ANY,
        ("Run-time",),
        r"Run-time linked against Berkeley DB: [\d.]+",
        (),
        "src/util/dict_db.c:655",
    ),
)


def _verbose_rows() -> tuple[Row, ...]:
    """One ``verbose_trace`` row per generated format, citing its newest release's site."""
    return tuple(
        Row("verbose_trace", ANY, (word,) if word else (), pattern, (), sites[-1].split("=", 1)[1])
        for word, pattern, _fmt, sites in VERBOSE_FORMATS
    )


CATALOGUE = CATALOGUE + _verbose_rows()
