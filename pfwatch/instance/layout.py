"""Configuration text for a private, loopback-only Postfix test instance.

Pure functions, no I/O: given an :class:`InstanceLayout` (where the instance lives, which
port it listens on, its lifetime limits and which services log verbosely) they return the
``main.cf`` and ``master.cf`` text that :mod:`pfwatch.instance.local` (local backend) and
:mod:`pfwatch.testing.docker_backend` (container backend) install. Errors: ``ValueError``
for an unknown service name in ``verbose`` or ``service_options``.

The service table mirrors the stock ``master.cf`` of Postfix 3.7 (``conf/master.cf`` in the
source; Debian ships it as /etc/postfix/master.cf) with two deliberate differences:
chroot is ``n`` everywhere (no jail to populate), and the public SMTP service listens on
``<listen_host>:<port>`` instead of ``smtp``. ``postlog unix-dgram ... postlogd`` is always
present so that ``maillog_file`` works without syslog (postlogd(8), Postfix >= 3.4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# Name of the public SMTP service row; replaced by "<listen_host>:<port>" when rendered.
SMTP_SERVICE = "smtp-inet"

# (service, type, private, unpriv, chroot, wakeup, maxproc, command) as in conf/master.cf.
STOCK_SERVICES: tuple[tuple[str, str, str, str, str, str, str, str], ...] = (
    (SMTP_SERVICE, "inet", "n", "-", "n", "-", "-", "smtpd"),
    ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
    ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
    ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
    ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
    ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
    ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
    ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
    ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
    ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
    ("proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"),
    ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
    ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
    ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
    ("error", "unix", "-", "-", "n", "-", "-", "error"),
    ("retry", "unix", "-", "-", "n", "-", "-", "error"),
    ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
    ("local", "unix", "-", "n", "n", "-", "-", "local"),
    ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
    ("lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"),
    ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
    ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
    ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
)

DEFAULT_HOSTNAME = "pfwatch-test.localdomain"


@dataclass(frozen=True)
class InstanceLayout:
    """Where one instance lives and how it is tuned. Paths are as the Postfix processes see them."""

    root: PurePosixPath
    port: int
    listen_host: str = "127.0.0.1"
    inet_interfaces: str = "127.0.0.1"
    max_idle: int = 3
    max_use: int | None = None
    hostname: str = DEFAULT_HOSTNAME
    relay_sink: tuple[str, int] | None = None
    verbose: frozenset[str] = frozenset({"smtpd"})
    service_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    main_cf_extra: Mapping[str, str] = field(default_factory=dict)
    master_cf_extra: Sequence[str] = ()

    @property
    def config_dir(self) -> PurePosixPath:
        return self.root / "etc"

    @property
    def queue_dir(self) -> PurePosixPath:
        return self.root / "queue"

    @property
    def data_dir(self) -> PurePosixPath:
        return self.root / "data"

    @property
    def maillog(self) -> PurePosixPath:
        return self.root / "maillog"

    @property
    def mailbox_dir(self) -> PurePosixPath:
        return self.root / "vmail"

    @property
    def smtp_service(self) -> str:
        return f"{self.listen_host}:{self.port}"


def _service_matches(wanted: str, service: str, command: str) -> bool:
    """True when ``wanted`` names this row: its service name, its command, or ``smtpd``."""
    return wanted in (service, command)


def _check_names(layout: InstanceLayout) -> None:
    known = {name for row in STOCK_SERVICES for name in (row[0], row[7])}
    for wanted in (*layout.verbose, *layout.service_options):
        if wanted not in known:
            raise ValueError(f"unknown master.cf service or command {wanted!r}")


def main_cf_params(layout: InstanceLayout) -> dict[str, str]:
    """The main.cf parameters of the instance, in file order (extras override defaults)."""
    params: dict[str, str] = {
        "compatibility_level": "3.6",
        "queue_directory": str(layout.queue_dir),
        "data_directory": str(layout.data_dir),
        "maillog_file": str(layout.maillog),
        "maillog_file_prefixes": str(layout.root),
        "myhostname": layout.hostname,
        "mydomain": "localdomain",
        "myorigin": "$myhostname",
        "inet_interfaces": layout.inet_interfaces,
        "inet_protocols": "ipv4",
        "mydestination": "",
        "local_recipient_maps": "",
        "local_transport": "error:local delivery disabled",
        "alias_maps": "",
        "alias_database": "",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "smtpd_banner": "$myhostname ESMTP",
        "biff": "no",
        "readme_directory": "no",
        "html_directory": "no",
        "delay_warning_time": "0h",
        "max_idle": f"{layout.max_idle}s",
    }
    if layout.max_use is not None:
        params["max_use"] = str(layout.max_use)
    if layout.relay_sink is not None:
        host, port = layout.relay_sink
        params["relayhost"] = f"[{host}]:{port}"
    else:
        params["default_transport"] = "error:external delivery disabled"
    params.update(layout.main_cf_extra)
    return params


def render_main_cf(layout: InstanceLayout) -> str:
    """main.cf text: one ``name = value`` line per parameter."""
    lines = ["# Generated by pfwatch.testing for a private test instance."]
    for name, value in main_cf_params(layout).items():
        lines.append(f"{name} = {value}".rstrip() if value else f"{name} =")
    return "\n".join(lines) + "\n"


def render_master_cf(layout: InstanceLayout) -> str:
    """master.cf text with ``-v`` and ``-o`` added to the services the layout names."""
    _check_names(layout)
    lines = ["# Generated by pfwatch.testing: the stock services, chroot n, loopback SMTP."]
    for row in STOCK_SERVICES:
        service, command = row[0], row[7]
        name = layout.smtp_service if service == SMTP_SERVICE else service
        argv = [command]
        if any(_service_matches(w, service, command) for w in layout.verbose):
            argv.append("-v")
        lines.append(" ".join([f"{name:<10}", *(f"{f:<7}" for f in row[1:7]), *argv]))
        for wanted, options in layout.service_options.items():
            if _service_matches(wanted, service, command):
                lines.extend(f"  -o {key}={value}" for key, value in options.items())
    lines.extend(layout.master_cf_extra)
    return "\n".join(lines) + "\n"


def update_main_cf_text(text: str, updates: Mapping[str, str | None]) -> str:
    """Return main.cf text with parameters set (replaced in place or appended) or removed.

    A parameter's logical line is its ``name = value`` line plus any continuation lines
    (lines starting with whitespace), as Postfix reads them. ``None`` removes a parameter.
    """
    emitted: set[str] = set()
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if skipping and line[:1] in (" ", "\t") and line.strip():
            continue
        skipping = False
        name = line.split("=", 1)[0].strip() if "=" in line and line[:1] not in "# \t" else ""
        if name in updates:
            skipping = True
            value = updates[name]
            if name not in emitted and value is not None:
                out.append(f"{name} = {value}" if value else f"{name} =")
            emitted.add(name)
            continue
        out.append(line)
    for name, value in updates.items():
        if name not in emitted and value is not None:
            out.append(f"{name} = {value}" if value else f"{name} =")
    return "\n".join(out) + "\n"
