"""The docker backend's parts that run without a Docker engine: config, parsing, commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
import pytest

from pfwatch.instance.layout import main_cf_params, render_master_cf
from pfwatch.instance.local import PostfixUnavailable
from pfwatch.sources.procfs import start_time
from pfwatch.testing import docker_backend as db


def test_container_layout_is_the_local_one_on_loopback_with_the_sink() -> None:
    """Host networking: the same free 127.0.0.1 port and loopback relay sink as local."""
    instance = db.DockerPostfixInstance(max_idle=2)
    assert instance.sink is not None
    instance.sink.start()
    try:
        layout = instance._initial_layout(Path("/tmp/pfw-abc"))
        params = main_cf_params(layout)
        assert params["inet_interfaces"] == "127.0.0.1"
        assert params["relayhost"] == f"[127.0.0.1]:{instance.sink.port}"
        assert not any(net in params.get("mynetworks", "") for net in ("10.", "172.", "192."))
        assert f"\n127.0.0.1:{layout.port} " in render_master_cf(layout)
    finally:
        instance.sink.stop()


def test_proc_listing_script_parses_this_hosts_proc() -> None:
    text = subprocess.run(
        ["sh", "-c", db.PROC_LISTING_SCRIPT], capture_output=True, text=True, check=True
    ).stdout
    entries = {entry.pid: entry for entry in db.parse_proc_listing(text)}
    me = entries[os.getpid()]
    assert me.ppid == os.getppid()
    started = start_time(os.getpid())
    assert started is not None and abs(me.started_at - started) < 0.005
    assert me.cmdline[:1] == tuple(psutil.Process().cmdline()[:1])


def test_proc_listing_survives_odd_command_names() -> None:
    stat = "42 (we ir) d) S 7 " + " ".join(["0"] * 17) + " 250 0 0"
    text = f"S {stat}\nC smtpd -n 127.0.0.1:25 -t inet\nS 43 (gone) Z 1\nbtime 1000\n100\n"
    entries = db.parse_proc_listing(text, boot=1000.25)
    argv = ("smtpd", "-n", "127.0.0.1:25", "-t", "inet")
    assert entries == [db.ProcEntry(42, 7, 1002.75, argv, "S")]
    with pytest.raises(ValueError, match="listing"):
        db.parse_proc_listing("garbage\n")


def test_build_context_is_shipped_and_tag_follows_its_content(tmp_path: Path) -> None:
    context = db.default_context()
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG BASE_IMAGE=debian:bookworm-slim" in dockerfile
    for package in ("postfix", "postfix-pcre", "postfix-lmdb", "postfix-cdb"):
        assert f" {package}" in dockerfile
    assert os.access(context / "entrypoint.sh", os.X_OK)
    for name in db.CONTEXT_FILES:
        (tmp_path / name).write_bytes((context / name).read_bytes())
    tag = db.image_tag(tmp_path)
    assert tag == db.image_tag(context)
    (tmp_path / "Dockerfile").write_text(dockerfile + "\n# changed\n", encoding="utf-8")
    assert db.image_tag(tmp_path) != tag


class _FakeWrapped:
    def __init__(self, code: int, out: bytes, err: bytes) -> None:
        self.result = (code, (out, err))
        self.calls: list[list[str]] = []

    def exec_run(self, argv: list[str], demux: bool) -> tuple[int, tuple[bytes, bytes]]:
        assert demux
        self.calls.append(argv)
        return self.result


class _FakeContainer:
    def __init__(self, wrapped: _FakeWrapped) -> None:
        self.wrapped = wrapped

    def get_wrapped_container(self) -> _FakeWrapped:
        return self.wrapped


def test_commands_run_inside_the_container() -> None:
    instance = db.DockerPostfixInstance(max_idle=2)
    wrapped = _FakeWrapped(0, b"postfix\n", b"")
    instance._container = _FakeContainer(wrapped)
    assert instance.run(["postconf", "-dh", "mail_owner"]).stdout == "postfix\n"
    assert wrapped.calls == [["postconf", "-dh", "mail_owner"]]
    wrapped.result = (1, (b"", b"fatal: no\n"))
    with pytest.raises(subprocess.CalledProcessError):
        instance.run(["postfix", "check"])
    assert instance.run(["postfix", "check"], check=False).stderr == "fatal: no\n"


def test_processes_are_the_masters_exec_ed_children(monkeypatch: pytest.MonkeyPatch) -> None:
    instance = db.DockerPostfixInstance()
    listing = [
        db.ProcEntry(1, 0, 10.0, ("/sbin/docker-init", "--", "entrypoint")),
        db.ProcEntry(50, 1, 11.0, ("/usr/lib/postfix/sbin/master", "-w")),
        db.ProcEntry(51, 50, 11.5, ("qmgr", "-l", "-t", "unix", "-u")),
        db.ProcEntry(52, 50, 12.0, ("/usr/lib/postfix/sbin/master", "-w")),
        db.ProcEntry(53, 50, 12.5, ("smtpd", "-n", "0.0.0.0:2525", "-t", "inet", "-u", "-v")),
    ]
    monkeypatch.setattr(instance, "_listing", lambda: listing)
    monkeypatch.setattr(instance, "_master_in", lambda entries: 50 if entries else None)
    assert [(p.pid, p.name, p.service) for p in instance.processes()] == [
        (51, "qmgr", "qmgr"),
        (53, "smtpd", "0.0.0.0:2525"),
    ]
    assert [p.pid for p in instance.processes(include_master=True)] == [50, 51, 53]


def test_without_an_engine_start_says_why() -> None:
    instance = db.DockerPostfixInstance()
    try:
        instance._check_available()
    except PostfixUnavailable as exc:
        assert "Docker" in str(exc) or "docker" in str(exc)
    else:
        pytest.skip("a Docker engine is reachable here: the unavailable path cannot be shown")
    with pytest.raises(PostfixUnavailable):
        instance.start()
    assert not instance.layout_ready
