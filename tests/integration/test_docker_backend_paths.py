"""The docker backend's code paths, run against the host's Postfix instead of a container.

The container is replaced by a stand-in whose ``exec_run`` runs the command on this host,
and the entry point script of docker/postfix-test is run for real. What this proves without
an engine: commands, the /proc listing, master detection, process listing, stop and close
of DockerPostfixInstance work with a real Postfix. The image and the container themselves
are exercised by tests/containers/test_docker_backend.py against a real engine.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import psutil
import pytest

from pfwatch.instance.local import unavailable_reason
from pfwatch.sources.procfs import start_time
from pfwatch.testing import docker_backend as db
from pfwatch.testing.plugin import unavailable

pytestmark = pytest.mark.postfix


def _gone(pid: int) -> bool:
    """Exited: absent, or a zombie that init has not reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class _HostExec:
    """Stands in for a testcontainers container: commands run on this host."""

    def get_wrapped_container(self) -> _HostExec:
        return self

    def exec_run(self, argv: list[str], demux: bool) -> tuple[int, tuple[bytes, bytes]]:
        done = subprocess.run(argv, capture_output=True, check=False, timeout=60)
        return done.returncode, (done.stdout, done.stderr)

    def stop(self) -> None:
        pass


class _HostDockerInstance(db.DockerPostfixInstance):
    def _check_available(self) -> None:
        reason = unavailable_reason()
        if reason is not None:
            unavailable(reason)

    def _start_container(self) -> None:
        entrypoint = db.default_context() / "entrypoint.sh"
        env = {**os.environ, "PFWATCH_INSTANCE_ROOT": str(self.root)}
        with subprocess.Popen(["sh", str(entrypoint)], env=env, stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            ready = proc.stdout.readline()
            proc.kill()
        assert b"container ready" in ready
        self._container: Any = _HostExec()


def test_docker_backend_drives_a_real_postfix_through_exec() -> None:
    pf = _HostDockerInstance(max_idle=2)
    try:
        pf.start()
        owner = pf.run(["postconf", "-dh", "mail_owner"]).stdout.strip()
        assert pf.data_dir.owner() == owner
        assert pf.mailbox_dir.owner() == "nobody"
        master = pf.master_pid
        assert master is not None and psutil.Process(master).name() == "master"
        since = pf.log_offset()
        with pf.open_session() as client:
            client.noop()
            smtpd = int(pf.wait_for_log(r"smtpd\[(\d+)\]: connect from", 10, since=since)[1])
            listed = {info.pid: info for info in pf.processes()}
            assert listed[smtpd].name == "smtpd"
            assert listed[smtpd].service == f"127.0.0.1:{pf.port}"
            assert abs(listed[smtpd].started_at - (start_time(smtpd) or 0)) < 0.005
        pf.wait_for_log(rf"smtpd\[{smtpd}\]: idle timeout -- exiting", 10, since=since)
        pf.wait_for_exit(smtpd, 5)
        assert smtpd not in {info.pid for info in pf.processes()}
        pf.stop()
        assert pf.master_pid is None
        assert _gone(master)
        config = str(pf.config_dir)
        left = []
        for proc in psutil.process_iter():
            try:
                if proc.environ().get("MAIL_CONFIG") == config:
                    left.append(proc.pid)
            except psutil.Error:
                continue
        assert left == []
    finally:
        pf.close()
    assert not pf.root.exists()
