"""Turn an operator's Postfix configuration into a safe throwaway lab copy.

``pfwatch lab --from DIR`` runs a real Postfix on loopback with the operator's main.cf and
master.cf, changed only where running it could reach the outside world or clash with the
host's own Postfix. Every change is listed in :attr:`LabConfig.notes`:

- the instance's own queue, data directory and log (``maillog_file``), loopback only;
- every public ``inet`` service on a free 127.0.0.1 port (the first SMTP one on the
  instance's port), chroot off (no jail is populated);
- all mail goes to a local SMTP sink: ``transport_maps`` starts with
  ``static:smtp:[127.0.0.1]:PORT`` (the operator's tables stay configured, so they are
  still opened and change-checked, and edits to them go live as in production) and
  ``relayhost`` is the sink; pipe(8) services become discard(8);
- secrets and external lookups: ``*_sasl_password_maps`` emptied (SASL off), network
  tables (ldap, mysql, pgsql, sqlite, memcache, mongodb, tcp, socketmap, nis) replaced by
  a one-entry ``inline:`` table, milters, ``content_filter`` and ``check_policy_service``
  removed;
- a short ``max_idle`` unless told otherwise;
- host installation paths (daemon_directory, mail_owner...) left to the host's defaults.

Tables that live under DIR are copied into the lab's configuration directory and the
references rewritten; tables elsewhere are read in place (never written).

Inputs: parsed main.cf/master.cf and the lab's paths and ports. Outputs:
:class:`LabConfig` (texts, notes, files to copy, port map). Errors: none (unknown
constructs are passed through unchanged).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pfwatch.config.model import MainCf, MasterCf, MasterService

NETWORK_TABLE_TYPES = (
    "ldap",
    "mysql",
    "pgsql",
    "sqlite",
    "memcache",
    "mongodb",
    "tcp",
    "socketmap",
    "nis",
    "nisplus",
)
NEUTRAL_TABLE = "inline:{ pfwatch-lab-neutralised=neutralised }"
_NETWORK_REF = re.compile(
    r"(?:proxy:)?(?:" + "|".join(NETWORK_TABLE_TYPES) + r"):(?:\{[^}]*\}|[^\s,]+)"
)
_POLICY = re.compile(r"check_policy_service\s+(?:\{[^}]*\}|[^\s,]+)\s*,?\s*")

HOST_PATHS = (
    "daemon_directory",
    "command_directory",
    "shlib_directory",
    "meta_directory",
    "sendmail_path",
    "newaliases_path",
    "mailq_path",
    "manpage_directory",
    "html_directory",
    "readme_directory",
    "sample_directory",
    "mail_owner",
    "setgid_group",
    "multi_instance_directories",
    "multi_instance_enable",
    "multi_instance_name",
    "multi_instance_group",
    "alternate_config_directories",
    "queue_directory",
    "data_directory",
    "maillog_file",
    "maillog_file_prefixes",
    "syslog_name",
    "inet_interfaces",
    "inet_protocols",
    "import_environment",
    "process_id_directory",
)
CLEARED = {
    "smtpd_milters": "milters are external services",
    "non_smtpd_milters": "milters are external services",
    "content_filter": "the content filter is an external service",
    "smtp_sasl_password_maps": "secret: SASL passwords are not copied",
    "lmtp_sasl_password_maps": "secret: SASL passwords are not copied",
    "smtp_fallback_relay": "all mail goes to the lab's sink",
    "fallback_relay": "all mail goes to the lab's sink",
    "sender_dependent_relayhost_maps": "all mail goes to the lab's sink",
    "sender_dependent_default_transport_maps": "all mail goes to the lab's sink",
}
FORCED = {"smtp_sasl_auth_enable": "no", "lmtp_sasl_auth_enable": "no"}
DELIVERY_TO_DISCARD = frozenset({"pipe", "spawn"})


@dataclass(frozen=True, slots=True)
class LabTargets:
    """Where the lab lives: its paths, ports and lifetime limits."""

    config_dir: Path
    base: Mapping[str, str]
    """The lab's own main.cf parameters (queue/data dir, maillog...) from the fixture."""
    smtp_port: int
    sink: tuple[str, int]
    max_idle: str | None
    free_port: Callable[[], int]


@dataclass
class LabConfig:
    """The lab's main.cf/master.cf texts, what was changed and what to copy."""

    main_text: str
    master_text: str
    notes: list[str] = field(default_factory=list)
    copies: dict[str, str] = field(default_factory=dict)
    """Operator file -> lab file (tables under the source directory)."""
    ports: dict[str, str] = field(default_factory=dict)
    """Original inet service name -> lab service name."""


def _quote(arg: str) -> str:
    return "{ " + arg + " }" if any(ch.isspace() for ch in arg) else arg


def _rewrite_paths(value: str, source: Path, lab: Path) -> str:
    return value.replace(str(source) + "/", str(lab) + "/")


def neutralise_value(name: str, value: str, notes: list[str]) -> str:
    """Remove external lookups and policy services from one parameter value."""
    new = _NETWORK_REF.sub(NEUTRAL_TABLE, value)
    if new != value:
        notes.append(f"{name}: network/database tables replaced by {NEUTRAL_TABLE}")
    cleaned = _POLICY.sub("", new).strip().rstrip(",")
    if cleaned != new:
        notes.append(f"{name}: check_policy_service removed (external policy server)")
    return cleaned


def lab_main_cf(main: MainCf, source: Path, targets: LabTargets, notes: list[str]) -> str:
    """The lab's main.cf text."""
    sink_host, sink_port = targets.sink
    sink = f"[{sink_host}]:{sink_port}"
    params: dict[str, str] = {}
    for name, param in main.parameters.items():
        if name in HOST_PATHS:
            continue
        if name in CLEARED:
            if param.value:
                notes.append(f"{name} cleared ({CLEARED[name]})")
            continue
        params[name] = neutralise_value(
            name, _rewrite_paths(param.value, source, targets.config_dir), notes
        )
    params.update(targets.base)
    params.update(FORCED)
    theirs = params.get("transport_maps", "")
    params["transport_maps"] = f"static:smtp:{sink}" + (f", {theirs}" if theirs else "")
    params["relayhost"] = sink
    notes.append(
        f"all mail goes to the lab's SMTP sink {sink} (transport_maps starts with "
        f"static:smtp:{sink}; your tables stay configured and change-checked)"
    )
    if targets.max_idle is not None:
        params["max_idle"] = targets.max_idle
        notes.append(f"max_idle = {targets.max_idle} (short, so edits go live quickly)")
    lines = ["# pfwatch lab: generated from " + str(source / "main.cf")]
    lines.extend(f"{name} = {value}".rstrip() for name, value in params.items())
    return "\n".join(lines) + "\n"


def _inet_name(service: MasterService, targets: LabTargets, first: list[bool]) -> str:
    port = service.name.rsplit(":", 1)[-1]
    is_smtp = port in ("smtp", "25") and service.command in ("smtpd", "postscreen")
    if is_smtp and first[0]:
        first[0] = False
        return f"127.0.0.1:{targets.smtp_port}"
    return f"127.0.0.1:{targets.free_port()}"


def lab_master_cf(master: MasterCf, source: Path, targets: LabTargets, config: LabConfig) -> str:
    """The lab's master.cf text (ports remapped, chroot off, pipe -> discard)."""
    first = [True]
    lines = ["# pfwatch lab: generated from " + str(source / "master.cf")]
    has_postlog = False
    for service in master.services:
        name = service.name
        if service.type == "inet":
            name = _inet_name(service, targets, first)
            config.ports[service.name] = name
        command, args = service.command, list(service.args)
        if command in DELIVERY_TO_DISCARD:
            config.notes.append(f"{service.key}: {command} replaced by discard (no commands run)")
            command, args = "discard", []
        if command == "postlogd":
            has_postlog = True
        args = [_rewrite_paths(a, source, targets.config_dir) for a in args]
        for index, arg in enumerate(args):
            if "=" in arg and index > 0 and args[index - 1] == "-o":
                key, _, value = arg.partition("=")
                if key in CLEARED:
                    args[index] = f"{key}="
                else:
                    args[index] = f"{key}={neutralise_value(key, value, config.notes)}"
        fields = [
            name,
            service.type,
            service.private,
            service.unpriv,
            "n",
            service.wakeup,
            service.maxproc,
            command,
            *(_quote(a) for a in args),
        ]
        lines.append(" ".join(fields))
    if not has_postlog:
        lines.append("postlog unix-dgram n - n - 1 postlogd")
        config.notes.append("postlog service added (the lab logs through postlogd)")
    if first[0]:
        lines.append(f"127.0.0.1:{targets.smtp_port} inet n - n - - smtpd")
        config.notes.append("no public SMTP service found: a plain smtpd was added")
    for original, lab in config.ports.items():
        config.notes.append(f"inet service {original} listens on {lab}")
    config.notes.append("chroot is off for every service (no jail in the lab)")
    return "\n".join(lines) + "\n"


def build_lab_config(
    main: MainCf, master: MasterCf, source: Path, targets: LabTargets, table_files: list[str]
) -> LabConfig:
    """Everything the lab installs, from the operator's parsed files."""
    config = LabConfig("", "")
    for path in table_files:
        if Path(path).is_relative_to(source) and Path(path).exists():
            config.copies[path] = str(targets.config_dir / Path(path).relative_to(source))
    config.main_text = lab_main_cf(main, source, targets, config.notes)
    config.master_text = lab_master_cf(master, source, targets, config)
    if config.copies:
        config.notes.append(
            f"{len(config.copies)} table file(s) under {source} copied into the lab"
        )
    config.notes = list(dict.fromkeys(config.notes))
    return config
