"""The "docker" backend: a :class:`PostfixInstance` whose Postfix runs in a container.

The instance directory is created on this host exactly as for the local backend and is
mounted at the *same path* in a container built from ``docker/postfix-test/`` (Debian
bookworm + postfix, postfix-pcre, postfix-lmdb, postfix-cdb). Every Postfix command
(``postfix -c DIR start|reload|stop|check``, postconf, postmap) runs inside with
``docker exec``; files are edited and the maillog is read on the host through the mount,
so the rest of the fixture API is unchanged. SMTP listens on port 2525 in the container,
published to 127.0.0.1 only. Processes are read from the container's /proc.

Differences from the local backend: no relay sink (the container cannot reach this host's
loopback), so outbound mail is refused (``default_transport = error:...``); ``mynetworks``
also lists the private ranges the published port's connections come from.

Inputs: the :class:`PostfixInstance` options; ``PFWATCH_POSTFIX_IMAGE`` (use a prebuilt
image) or ``PFWATCH_POSTFIX_DOCKER_CONTEXT`` (build context, default the repository's
``docker/postfix-test``). Errors: :class:`PostfixUnavailable` when no Docker engine is
reachable or no image/context is found; the base class's errors otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from pfwatch.instance.layout import InstanceLayout
from pfwatch.instance.local import PostfixInstance, PostfixUnavailable, ProcessInfo

CONTAINER_SMTP_PORT = 2525
DEFAULT_SOCKET = "/var/run/docker.sock"
IMAGE_ENV = "PFWATCH_POSTFIX_IMAGE"
CONTEXT_ENV = "PFWATCH_POSTFIX_DOCKER_CONTEXT"
IMAGE_NAME = "pfwatch-postfix-test"
CONTAINER_MYNETWORKS = "127.0.0.0/8 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16"
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


def container_layout(template: InstanceLayout, root: Path) -> InstanceLayout:
    """The template with container networking: all interfaces, fixed port, no sink."""
    extra = {"mynetworks": CONTAINER_MYNETWORKS, **template.main_cf_extra}
    return dataclasses.replace(
        template,
        root=PurePosixPath(root),
        port=CONTAINER_SMTP_PORT,
        listen_host="0.0.0.0",  # noqa: S104 - inside the container; published to 127.0.0.1
        inet_interfaces="all",
        relay_sink=None,
        main_cf_extra=extra,
    )


def published_port(attrs: dict[str, Any]) -> int:
    """The 127.0.0.1 host port of the SMTP port, from ``docker inspect`` attributes."""
    mappings = attrs["NetworkSettings"]["Ports"].get(f"{CONTAINER_SMTP_PORT}/tcp") or []
    for mapping in mappings:
        if mapping.get("HostIp") == "127.0.0.1":
            return int(mapping["HostPort"])
    raise PostfixUnavailable(f"port {CONTAINER_SMTP_PORT} is not published on 127.0.0.1")


def parse_proc_listing(text: str) -> list[ProcEntry]:
    """Parse PROC_LISTING_SCRIPT output into processes with absolute start times."""
    lines = text.strip().splitlines()
    if len(lines) < 2 or not lines[-2].startswith("btime "):
        raise ValueError(f"unexpected /proc listing tail: {lines[-2:]!r}")
    boot, ticks = int(lines[-2].split()[1]), int(lines[-1])
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
        options["relay_sink"] = False
        super().__init__(**options)
        self._container: Any = None
        self._host_port = 0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._host_port

    # ----------------------------------------------------------------- backend hooks
    def _check_available(self) -> None:
        if not os.environ.get("DOCKER_HOST") and not Path(DEFAULT_SOCKET).exists():
            raise PostfixUnavailable(
                f"no Docker engine: {DEFAULT_SOCKET} absent, DOCKER_HOST unset"
            )
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

    def _initial_layout(self, root: Path) -> InstanceLayout:
        return container_layout(self._template, root)

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
            client.images.build(path=str(context), tag=tag, rm=True)
        return tag

    def _start_container(self) -> None:
        from testcontainers.core.container import DockerContainer  # noqa: PLC0415

        root = str(self.root)
        container = (
            DockerContainer(self._image())
            .with_volume_mapping(root, root, "rw")
            .with_env("PFWATCH_INSTANCE_ROOT", root)
            .with_kwargs(init=True)
        )
        ports: dict[Any, Any] = container.ports  # docker-py also takes (host_ip, host_port)
        ports[f"{CONTAINER_SMTP_PORT}/tcp"] = ("127.0.0.1", None)
        container.start()
        self._container = container
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        self._host_port = published_port(wrapped.attrs)
        deadline = time.monotonic() + 60
        while b"container ready" not in container.get_wrapped_container().logs():
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
        listing = parse_proc_listing(self.run(["sh", "-c", PROC_LISTING_SCRIPT]).stdout)
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
            if self._container is not None:
                self._container.stop()
                self._container = None
            super().close()
