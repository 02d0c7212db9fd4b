"""A real ``postmulti`` host for tests, set up privately (tests only).

``postmulti`` manages the instances of the *default* configuration directory only (it has
no ``-c`` and refuses a non-default ``MAIL_CONFIG``; postmulti(1)). To run it for real
without touching the host's ``/etc/postfix``, :class:`PostmultiHost` keeps a private mount
namespace (``unshare --mount``, held open by a ``sleep`` process) in which a private
directory is bind-mounted over ``/etc/postfix``; every Postfix command runs in it through
``nsenter``. Outside the namespace nothing changes: the primary's configuration is read
where it lives (the private directory), and every other path (queues, data, the second
instance's configuration, the log) is a private path that is the same inside and out, so
pfwatch runs as it would on the host.

The set-up is the one the issue names: ``postmulti -e init``, ``postmulti -I postfix-out
-G mta -e create`` (with private directories), ``postmulti -i postfix-out -e enable``,
``postmulti -p start``. The second instance's main.cf and master.cf are then replaced by
the loopback layout of :mod:`pfwatch.instance.layout` on another port (postmulti writes
them from the stock prototypes, which listen on port 25 with chroot), keeping what
postmulti set (``multi_instance_name``, ``multi_instance_group``, the enable flag).
Both instances log to the primary's ``maillog_file`` through their own postlogd.

Inputs: a base directory. Outputs: a running two-instance host. Errors:
:class:`~pfwatch.instance.local.PostfixUnavailable` when not root, without Postfix,
``postmulti``, ``unshare`` or ``nsenter``; :class:`PostmultiError` when a step fails
(its command and output).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import psutil

from pfwatch.instance.layout import render_main_cf, render_master_cf, update_main_cf_text
from pfwatch.instance.local import PostfixInstance, PostfixUnavailable, free_port

DEFAULT_CONFIG = Path("/etc/postfix")
SECONDARY = "postfix-out"
GROUP = "mta"


class PostmultiError(RuntimeError):
    """A step of the set-up failed."""


@dataclass(frozen=True)
class Instance:
    """One instance of the host: where it lives (the same paths inside and outside)."""

    name: str
    config_dir: Path
    queue_dir: Path
    port: int

    @property
    def main_cf(self) -> Path:
        return self.config_dir / "main.cf"

    def master_pid(self) -> int | None:
        try:
            pid = int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def children(self) -> dict[int, str]:
        """``{pid: name}`` of the master's live children (the /proc truth)."""
        master = self.master_pid()
        if master is None:
            return {}
        found: dict[int, str] = {}
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(master).children():
                with contextlib.suppress(psutil.Error):
                    if child.status() != psutil.STATUS_ZOMBIE:
                        found[child.pid] = child.name()
        return found


class PostmultiHost:
    """A primary and ``postfix-out``, managed by the real ``postmulti``; a context manager."""

    def __init__(self, base_dir: Path, *, max_idle: int = 3) -> None:
        self.base_dir = base_dir
        self.max_idle = max_idle
        self._primary: PostfixInstance | None = None
        self._holder: subprocess.Popen[bytes] | None = None
        self.instances: list[Instance] = []
        self.commands: list[str] = []

    # ---------------------------------------------------------------- set-up
    @staticmethod
    def unavailable_reason() -> str | None:
        if os.geteuid() != 0:
            return "needs root"
        for tool in ("postfix", "postmulti", "unshare", "nsenter", "mount"):
            if shutil.which(tool) is None:
                return f"{tool} not found"
        if not DEFAULT_CONFIG.is_dir():
            return f"{DEFAULT_CONFIG} is missing (Postfix not installed)"
        return None

    def start(self) -> PostmultiHost:
        reason = self.unavailable_reason()
        if reason is not None:
            raise PostfixUnavailable(reason)
        primary = PostfixInstance(base_dir=self.base_dir, max_idle=self.max_idle)
        self._primary = primary
        primary.prepare()
        self._copy_meta_files(primary.config_dir)
        self._enter_namespace()
        self.run("mount", "--bind", str(primary.config_dir), str(DEFAULT_CONFIG))
        self.run("postmulti", "-e", "init")
        out_root = primary.root / "out"
        out_root.mkdir(mode=0o755)
        out_etc, out_queue, out_data = out_root / "etc", out_root / "queue", out_root / "data"
        self.run(
            "postmulti",
            *("-I", SECONDARY, "-G", GROUP, "-e", "create"),
            f"config_directory={out_etc}",
            f"queue_directory={out_queue}",
            f"data_directory={out_data}",
        )
        port = free_port()
        self._write_secondary(out_root, port)
        self.run("postmulti", "-i", SECONDARY, "-e", "enable")
        self.instances = [
            Instance("postfix", primary.config_dir, primary.queue_dir, primary.port),
            Instance(SECONDARY, out_etc, out_queue, port),
        ]
        self.run("postmulti", "-p", "start")
        primary.wait_ready()
        self._wait_master(self.instances[1])
        return self

    def _copy_meta_files(self, config_dir: Path) -> None:
        """postfix-script and postmulti read meta_directory (/etc/postfix by default):
        postfix-files, dynamicmaps.cf and the prototypes come along into the private copy."""
        for entry in DEFAULT_CONFIG.iterdir():
            target = config_dir / entry.name
            if entry.name in ("main.cf", "master.cf") or target.exists():
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.copytree(entry, target, symlinks=True)
            else:
                shutil.copy2(entry, target, follow_symlinks=False)

    def _enter_namespace(self) -> None:
        own = Path("/proc/self/ns/mnt").readlink()
        holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sleep", "infinity"]
        )
        self._holder = holder
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{holder.pid}/ns/mnt").readlink() != own:
                    return
            if holder.poll() is not None:
                break
            time.sleep(0.01)
        raise PostmultiError("unshare --mount did not give a private mount namespace")

    def _write_secondary(self, root: Path, port: int) -> None:
        assert self._primary is not None
        layout = replace(self._primary.layout, root=PurePosixPath(root), port=port)
        etc = root / "etc"
        created = (etc / "main.cf").read_text(encoding="utf-8")
        kept = {
            name: value
            for line in created.splitlines()
            if "=" in line and not line.startswith(("#", " ", "\t"))
            for name, value in [(p.strip() for p in line.split("=", 1))]
            if name.startswith("multi_instance_")
        }
        text = update_main_cf_text(render_main_cf(layout), kept)
        # one log for the host, as syslog would have it: each postlogd appends to it
        text = update_main_cf_text(
            text,
            {
                "maillog_file": str(self._primary.maillog),
                "maillog_file_prefixes": str(self._primary.root),
            },
        )
        (etc / "main.cf").write_text(text, encoding="utf-8")
        (etc / "master.cf").write_text(render_master_cf(layout), encoding="utf-8")
        cooled = time.time() - 10  # past Postfix's 2 s cool-down of a fresh main.cf
        for name in ("main.cf", "master.cf"):
            os.utime(etc / name, (cooled, cooled))
        for directory in (root / "mail",):
            directory.mkdir(mode=0o755, exist_ok=True)

    def _wait_master(self, instance: Instance, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if instance.master_pid() is not None:
                return
            time.sleep(0.05)
        raise PostmultiError(f"{instance.name}: no master after {timeout:g} s")

    # ---------------------------------------------------------------- use
    @property
    def primary(self) -> PostfixInstance:
        assert self._primary is not None
        return self._primary

    @property
    def maillog(self) -> Path:
        return self.primary.maillog

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command inside the private mount namespace."""
        assert self._holder is not None
        done = subprocess.run(
            ["nsenter", "-t", str(self._holder.pid), "-m", "--", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.commands.append(" ".join(argv))
        if check and done.returncode != 0:
            raise PostmultiError(
                f"{' '.join(argv)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
            )
        return done

    def edit_main_cf(self, instance: Instance, updates: Mapping[str, str | None]) -> float:
        """Set parameters by rename-into-place; returns the time of the rename."""
        text = update_main_cf_text(instance.main_cf.read_text(encoding="utf-8"), updates)
        temporary = instance.main_cf.with_name(".main.cf.pfwatch-test")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o644)
        temporary.replace(instance.main_cf)
        return time.time()

    def postmulti_list(self) -> Sequence[str]:
        """``postmulti -l -a``: name, group, enabled, configuration directory per line."""
        return self.run("postmulti", "-l", "-a").stdout.splitlines()

    # ---------------------------------------------------------------- tear-down
    def close(self) -> None:
        try:
            if self._holder is not None:
                self.run("postmulti", "-p", "stop", check=False)
                for instance in self.instances:
                    master = instance.master_pid()
                    if master is not None:
                        with contextlib.suppress(psutil.Error):
                            psutil.Process(master).wait(10)
        finally:
            if self._holder is not None:
                self._holder.kill()
                self._holder.wait(10)
                self._holder = None
            if self._primary is not None:
                self._primary.close()

    def __enter__(self) -> PostmultiHost:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.close()
