"""sd_notify: datagrams reach a real AF_UNIX socket, abstract names work, no socket is fine."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pfwatch.service.sdnotify import notify, watchdog_interval


def test_ready_reaches_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        assert notify("READY=1\nSTATUS=watching", {"NOTIFY_SOCKET": str(path)})
        assert server.recv(100) == b"READY=1\nSTATUS=watching"


def test_abstract_namespace() -> None:
    name = f"pfwatch-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        assert notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert server.recv(100) == b"WATCHDOG=1"


def test_without_systemd_nothing_happens(tmp_path: Path) -> None:
    assert notify("READY=1", {}) is False
    assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "absent")}) is False


def test_watchdog_interval() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
