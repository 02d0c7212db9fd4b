"""Containers for the container tests, driven with the docker CLI.

Inputs: a running Docker engine and the images built by scripts/build-images.sh
(``pfwatch:dev``, ``pfwatch-postfix-test:dev``). Outputs: :class:`Containers`, which
starts containers with host networking only (loopback ports), waits on conditions while
checking that every container it started still runs, and removes them all at the end.
Errors: :func:`require_engine` skips (or, under CI, fails) with one line when the engine
or an image is missing; :class:`ContainerDied` carries the dead container's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pfwatch.testing.docker_backend import PROC_LISTING_SCRIPT, ProcEntry, parse_proc_listing

PFWATCH_IMAGE = os.environ.get("PFWATCH_IMAGE", "pfwatch:dev")
POSTFIX_IMAGE = os.environ.get("PFWATCH_POSTFIX_TEST_IMAGE", "pfwatch-postfix-test:dev")
SIDECAR_UID = 65532

T = TypeVar("T")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"container tests: {reason} (CI is set: scripts/test.sh must provide it)")
    pytest.skip(f"container tests: {reason}")


def docker(
    *argv: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *argv], capture_output=True, text=True, check=check, timeout=timeout
    )


def engine_problem(*images: str) -> str | None:
    """Why the container tests cannot run here (no client, no engine, an image missing)."""
    if shutil.which("docker") is None:
        return "no docker client (bash scripts/test.sh installs the engine)"
    info = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if info.returncode != 0:
        return "no Docker engine answers (bash scripts/docker-setup.sh starts one)"
    for image in images:
        if docker("image", "inspect", image, check=False).returncode != 0:
            return f"image {image} missing (bash scripts/build-images.sh builds it)"
    return None


def require_engine(*images: str) -> None:
    """Skip (fail under CI) unless the engine answers and the images exist."""
    problem = engine_problem(*images)
    if problem is not None:
        _unavailable(problem)


class ContainerDied(AssertionError):
    """A container of the test stopped while the test still needed it."""


class Containers:
    """Containers started by one test; all removed by :meth:`close`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.names: list[str] = []
        self.expected_down: set[str] = set()
        self.directories: list[Path] = []
        self.log_files: list[Path] = []
        self.closers: list[Callable[[], object]] = []
        """Called first by :meth:`close`: client connections a failed test left open."""

    def directory(self) -> Path:
        """A host directory for bind mounts, readable by the sidecar's unprivileged user;
        removed after the containers."""
        path = Path(tempfile.mkdtemp(prefix="pfw-vol-"))
        path.chmod(0o755)
        self.directories.append(path)
        return path

    def run(self, name: str, image: str, *args: str, options: Sequence[str] = ()) -> str:
        """``docker run -d`` with host networking; returns the full container name."""
        full = f"{self.prefix}-{name}"
        self.names.append(full)
        docker("run", "-d", "--name", full, "--network", "host", *options, image, *args)
        return full

    def running(self, name: str) -> bool:
        state = docker("inspect", "-f", "{{.State.Running}}", name, check=False)
        return state.stdout.strip() == "true"

    def logs(self, name: str) -> tuple[str, str]:
        done = docker("logs", name, check=False)
        return done.stdout, done.stderr

    def log_report(self) -> str:
        parts = []
        for name in self.names:
            out, err = self.logs(name)
            state = docker("inspect", "-f", "{{json .State}}", name, check=False).stdout.strip()
            parts.append(
                f"===== {name} state: {state}\n--- stdout (last 80 lines)\n"
                + "\n".join(out.splitlines()[-80:])
                + "\n--- stderr (last 80 lines)\n"
                + "\n".join(err.splitlines()[-80:])
            )
        for path in self.log_files:
            text = path.read_text(errors="replace") if path.exists() else "(absent)"
            parts.append(
                f"===== {path.name} (last 80 lines)\n" + "\n".join(text.splitlines()[-80:])
            )
        return "\n".join(parts)

    def check_alive(self) -> None:
        for name in self.names:
            if name not in self.expected_down and not self.running(name):
                raise ContainerDied(f"container {name} stopped mid-test\n{self.log_report()}")

    def wait_for(
        self, probe: Callable[[], T | None], what: str, timeout: float = 60, every: float = 0.2
    ) -> T:
        """Poll ``probe`` until it returns something truthy; fail with the logs otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            found = probe()
            if found:
                return found
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s: {what}\n{self.log_report()}")
            time.sleep(every)

    def exec(self, name: str, *argv: str, user: str | None = None, check: bool = True) -> str:
        extra = ["-u", user] if user else []
        done = docker("exec", *extra, name, *argv, check=False)
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker exec {name} {' '.join(argv)} failed ({done.returncode}): "
                f"{done.stdout}{done.stderr}"
            )
        return done.stdout

    def processes(self, name: str) -> list[ProcEntry]:
        """The live processes of a container's PID namespace, with the pids it sees."""
        listing = parse_proc_listing(self.exec(name, "sh", "-c", PROC_LISTING_SCRIPT))
        return [entry for entry in listing if entry.state != "Z"]

    def health(self, name: str) -> str:
        done = docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", name)
        return done.stdout.strip()

    def inspect(self, name: str) -> Any:
        return json.loads(docker("inspect", name).stdout)[0]

    def close(self) -> None:
        for closer in reversed(self.closers):
            with contextlib.suppress(OSError):
                closer()
        for name in reversed(self.names):
            docker("rm", "-f", "-v", name, check=False)
        for path in self.directories:
            shutil.rmtree(path, ignore_errors=True)
