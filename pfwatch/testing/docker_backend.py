"""The "docker" backend: a :class:`PostfixInstance` whose Postfix runs in a container.

The instance directory is created on this host exactly as for the local backend and is
mounted at the *same path* in a container of the image built from ``docker/postfix-test/``
(Debian bookworm + postfix, postfix-pcre, postfix-lmdb, postfix-cdb). Every Postfix command
(``postfix -c DIR start|reload|stop|check``, postconf, postmap) runs inside with
``docker exec``; files are edited and the maillog is read on the host through the mount,
so the rest of the fixture API is unchanged. The container uses the host's network
(``network_mode=host``): Postfix listens on the same free 127.0.0.1 port as a local
instance and relays to the same loopback sink; no container address exists. Processes
are read from the container's /proc, so pids are those of the container's PID namespace
(the ones Postfix logs).

No registry is contacted: the image is built locally when missing (``docker build`` with
host networking, from a base image that must exist locally; scripts/docker-setup.sh makes
one), and testcontainers' reaper (Ryuk, an image it would pull) is disabled: the backend
removes its container itself in :meth:`DockerPostfixInstance.close`.

Inputs: the :class:`PostfixInstance` options; ``PFWATCH_POSTFIX_IMAGE`` (use a prebuilt
image) or ``PFWATCH_POSTFIX_DOCKER_CONTEXT`` (build context, default the repository's
``docker/postfix-test``). Errors: :class:`PostfixUnavailable` when no Docker engine is
reachable or no image/context is found; the base class's errors otherwise.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pfwatch.instance.local import PostfixInstance, PostfixUnavailable, ProcessInfo
from pfwatch.sources.procfs import boot_time

DEFAULT_SOCKET = "/var/run/docker.sock"
IMAGE_ENV = "PFWATCH_POSTFIX_IMAGE"
CONTEXT_ENV = "PFWATCH_POSTFIX_DOCKER_CONTEXT"
IMAGE_NAME = "pfwatch-postfix-test"
RYUK_ENV = "TESTCONTAINERS_RYUK_DISABLED"
CONTEXT_FILES = ("Dockerfile", "entrypoint.sh")

# Prints two lines per process, "S <stat line>" and "C <cmdline with spaces>", then
# "btime N" (boot time) and the clock tick rate.
PROC_LISTING_SCRIPT = (
    "for d in /proc/[0-9]*; do "
    'read -r s 2>/dev/null < "$d/stat" || continue; '
    'printf "S %s\\nC " "$s"; tr \'\\000\' \' \' 2>/dev/null < "$d/cmdline"; echo; done; '
    "grep '^btime' /proc/stat; getconf CLK_TCK"
)


class ProcEntry(NamedTuple):
    """One process of the container's /proc listing."""

    pid: int
    ppid: int
    started_at: float
    cmdline: tuple[str, ...]
    state: str = "R"


def default_context() -> Path:
    """The build context: $PFWATCH_POSTFIX_DOCKER_CONTEXT or the repository's directory."""
    configured = os.environ.get(CONTEXT_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "docker" / "postfix-test"


def image_tag(context: Path) -> str:
    """``pfwatch-postfix-test:<hash of the context files>``: rebuilt only when they change."""
    digest = hashlib.sha256()
    for name in CONTEXT_FILES:
        digest.update(name.encode() + b"\0" + (context / name).read_bytes())
    return f"{IMAGE_NAME}:{digest.hexdigest()[:12]}"


def parse_proc_listing(text: str, boot: float | None = None) -> list[ProcEntry]:
    """Parse PROC_LISTING_SCRIPT output into processes with absolute start times.

    A container shares the host's kernel and boot clock, so start times are measured
    against this host's exact boot time (``btime`` in the listing is whole seconds).
    """
    lines = text.strip().splitlines()
    if len(lines) < 2 or not lines[-2].startswith("btime "):
        raise ValueError(f"unexpected /proc listing tail: {lines[-2:]!r}")
    ticks = int(lines[-1])
    if boot is None:
        boot = boot_time()
    entries: list[ProcEntry] = []
    stat = ""
    for line in lines[:-2]:
        if line.startswith("S "):
            stat = line[2:]
            continue
        if not (line.startswith("C") and stat):
            continue
        # Fields after the parenthesised command name: state ppid ... starttime (field 22).
        after = stat[stat.rindex(")") + 2 :].split()
        pid = int(stat.split(" ", 1)[0])
        started = boot + int(after[19]) / ticks
        argv = tuple(line[2:].split())
        entries.append(ProcEntry(pid, int(after[1]), started, argv, after[0]))
        stat = ""
    return entries


def _docker() -> Any:
    """The docker SDK (optional dependency, extra ``docker``), untyped."""
    return importlib.import_module("docker")


def _info(entry: ProcEntry) -> ProcessInfo:
    name = Path(entry.cmdline[0]).name if entry.cmdline else "?"
    args = entry.cmdline
    service = args[args.index("-n") + 1] if "-n" in args[:-1] else name
    return ProcessInfo(entry.pid, name, entry.started_at, service, args)


class DockerPostfixInstance(PostfixInstance):
    """A PostfixInstance whose Postfix commands run in a container (see module docstring)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._container: Any = None

    # ----------------------------------------------------------------- backend hooks
    def _check_available(self) -> None:
        if not os.environ.get("DOCKER_HOST") and not Path(DEFAULT_SOCKET).exists():
            raise PostfixUnavailable(
                f"no Docker engine: {DEFAULT_SOCKET} absent, DOCKER_HOST unset"
            )
        if not os.environ.get("DOCKER_HOST"):
            # docker-py leaks its socket when the engine is gone at construction:
            # a socket file left by a stopped dockerd is told apart here first.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(5)
                try:
                    probe.connect(DEFAULT_SOCKET)
                except OSError as exc:
                    raise PostfixUnavailable(
                        f"no Docker engine answers on {DEFAULT_SOCKET}: {exc}"
                    ) from exc
        try:
            client = _docker().from_env()
            try:
                client.ping()
            finally:
                client.close()
        except ImportError as exc:
            raise PostfixUnavailable(f"docker backend needs pfwatch[docker]: {exc}") from exc
        except Exception as exc:
            raise PostfixUnavailable(f"no Docker engine reachable: {exc}") from exc

    def _set_ownership(self) -> None:
        """The container's entry point chowns data/ and vmail/ to its own uids."""

    def prepare(self) -> None:
        if self.layout_ready:
            return
        super().prepare()
        self._start_container()

    def _image(self) -> str:
        configured = os.environ.get(IMAGE_ENV)
        if configured:
            return configured
        context = default_context()
        if not (context / "Dockerfile").is_file():
            raise PostfixUnavailable(
                f"no Dockerfile in {context}: set {CONTEXT_ENV} or {IMAGE_ENV}"
            )
        tag = image_tag(context)
        docker = _docker()
        client = docker.from_env()
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            try:
                client.images.build(
                    path=str(context), tag=tag, rm=True, pull=False, network_mode="host"
                )
            except docker.errors.BuildError as exc:
                log = "".join(str(part.get("stream", "")) for part in exc.build_log)
                raise PostfixUnavailable(f"building {tag} failed: {exc}\n{log[-3000:]}") from exc
        finally:
            client.close()
        return tag

    def _start_container(self) -> None:
        os.environ.setdefault(RYUK_ENV, "true")  # its image cannot be pulled
        from testcontainers.core.config import testcontainers_config  # noqa: PLC0415
        from testcontainers.core.container import DockerContainer  # noqa: PLC0415

        testcontainers_config.ryuk_disabled = True
        root = str(self.root)
        container = (
            DockerContainer(self._image())
            .with_volume_mapping(root, root, "rw")
            .with_env("PFWATCH_INSTANCE_ROOT", root)
            .with_kwargs(init=True, network_mode="host")
        )
        container.start()
        self._container = container
        deadline = time.monotonic() + 60
        wrapped = container.get_wrapped_container()
        while b"container ready" not in wrapped.logs():
            wrapped.reload()
            if wrapped.status != "running":
                log = wrapped.logs().decode(errors="replace")
                raise PostfixUnavailable(f"the Postfix test container stopped:\n{log}")
            if time.monotonic() > deadline:
                raise PostfixUnavailable("the Postfix test container did not get ready")
            time.sleep(0.2)

    # ----------------------------------------------------------------- commands
    def run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container."""
        if self._container is None:
            raise RuntimeError("container not started: call start() first")
        code, (out, err) = self._container.get_wrapped_container().exec_run(list(argv), demux=True)
        result = subprocess.CompletedProcess(
            list(argv), int(code), (out or b"").decode(), (err or b"").decode()
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, list(argv), result.stdout, result.stderr
            )
        return result

    # ----------------------------------------------------------------- processes
    def _listing(self) -> list[ProcEntry]:
        """The container's live processes (zombies, i.e. exited but unreaped, left out)."""
        if self._container is None:
            return []
        try:
            text = self.run(["sh", "-c", PROC_LISTING_SCRIPT]).stdout
        except (_docker().errors.APIError, subprocess.CalledProcessError):
            if self._container is None:  # closed meanwhile (a poller in another thread)
                return []
            raise
        listing = parse_proc_listing(text)
        return [entry for entry in listing if entry.state != "Z"]

    def _master_in(self, listing: list[ProcEntry]) -> int | None:
        try:
            pid = int((self.queue_dir / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError, RuntimeError):
            return None
        alive = any(e.pid == pid and "master" in " ".join(e.cmdline) for e in listing)
        return pid if alive else None

    @property
    def master_pid(self) -> int | None:
        return self._master_in(self._listing())

    def processes(self, *, include_master: bool = False) -> list[ProcessInfo]:
        listing = self._listing()
        master = self._master_in(listing)
        if master is None:
            return []
        master_argv = next((e.cmdline for e in listing if e.pid == master), ())
        found = [
            _info(e)
            for e in listing
            if (e.pid == master and include_master)
            # a child forked but not yet exec'ed still shows the master's argv: skip it
            or (e.ppid == master and e.cmdline != master_argv)
        ]
        return sorted(found, key=lambda info: (info.started_at, info.pid))

    def all_processes(self) -> list[ProcessInfo]:
        """Every process in the container except its init, the idle entry point and ps."""
        return [
            _info(e)
            for e in self._listing()
            if e.pid != 1 and e.cmdline[:1] not in (("sleep",), ("sh",), ("/sbin/docker-init",))
        ]

    def wait_for_exit(self, pid: int, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(entry.pid != pid for entry in self._listing()):
                return time.time()
            time.sleep(0.1)
        raise TimeoutError(f"process {pid} still running after {timeout}s")

    # ----------------------------------------------------------------- lifecycle
    def stop(self, timeout: float = 15.0) -> None:
        master = self.master_pid
        if master is not None:
            self.postfix("stop", check=False)
            self.wait_for_exit(master, timeout)

    def close(self) -> None:
        try:
            if self._container is not None:
                self.stop()
        finally:
            container, self._container = self._container, None
            if container is not None:
                container.stop()  # removes the container and its anonymous volumes
            super().close()
