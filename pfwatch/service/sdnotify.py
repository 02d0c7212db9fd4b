"""systemd readiness notification (sd_notify) in plain Python, no dependency.

Inputs: a state string such as ``"READY=1"``, ``"STATUS=watching 12 files"`` or
``"WATCHDOG=1"``; the socket path in ``$NOTIFY_SOCKET`` (a leading ``@`` is the abstract
namespace). Outputs: one datagram. Returns False when not run under systemd (no socket)
or when sending failed; never raises. Protocol: sd_notify(3), stable by design.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` to systemd; True when a datagram was sent."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds (how often to send WATCHDOG=1), or None."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
