"""The "chroot" backend: a :class:`PostfixInstance` running another Debian release's Postfix.

A chroot made by ``debootstrap --variant=minbase --include=postfix,postfix-pcre SUITE DIR``
holds that release's Postfix (bullseye 3.5, bookworm 3.7, trixie 3.10). The instance directory is
created below the chroot's ``/tmp``; inside the chroot a symbolic link named like the
chroot's own host path points at ``/``, so every path of the instance is the same string
on the host and inside the chroot (the host reads the maillog and edits files, the chroot's
Postfix sees identical paths in main.cf). Every Postfix command runs as
``chroot DIR COMMAND``; processes share the host's network (loopback port, relay sink) and
are found in the host's /proc as for the local backend.

Chroots are cached outside the checkout: ``$PFWATCH_CHROOT_DIR`` or
``/var/cache/pfwatch-test/chroots``, one directory per suite (scripts/test.sh builds the
missing ones; :func:`build_chroot` does it on demand).

Inputs: the suite and the :class:`PostfixInstance` options. Errors:
:class:`PostfixUnavailable` when not root or the chroot is missing or has no Postfix.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pfwatch.instance.local import PostfixInstance, PostfixUnavailable

CHROOT_DIR_ENV = "PFWATCH_CHROOT_DIR"
DEFAULT_CHROOT_DIR = Path("/var/cache/pfwatch-test/chroots")
SUITES: dict[str, str] = {"bullseye": "3.5", "bookworm": "3.7", "trixie": "3.10"}
"""Debian suite -> the Postfix release series it ships (3.5.25, 3.7.11, 3.10.13)."""


def chroot_root() -> Path:
    """Where the cached chroots live."""
    return Path(os.environ.get(CHROOT_DIR_ENV) or DEFAULT_CHROOT_DIR)


def chroot_path(suite: str) -> Path:
    return chroot_root() / suite


def chroot_missing(suite: str) -> str | None:
    """Why the chroot of ``suite`` cannot be used, or None when it can."""
    if os.geteuid() != 0:
        return "the chroot backend needs root (chroot, postfix start)"
    path = chroot_path(suite)
    if not (path / "usr/sbin/postconf").is_file():
        return f"no {suite} chroot with Postfix at {path} (scripts/test.sh builds it)"
    return None


def build_chroot(suite: str) -> Path:
    """``debootstrap --variant=minbase --include=postfix SUITE DIR`` unless it exists."""
    path = chroot_path(suite)
    if (path / "usr/sbin/postconf").is_file():
        return path
    staging = path.with_name(path.name + ".tmp")
    subprocess.run(["rm", "-rf", str(staging)], check=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=postfix,postfix-pcre", suite, str(staging)],
        check=True,
        capture_output=True,
    )
    staging.rename(path)
    return path


def release_of(suite: str) -> str:
    """``mail_version`` of the chroot's Postfix (``postconf -dh mail_version``)."""
    done = subprocess.run(
        ["chroot", str(chroot_path(suite)), "postconf", "-dh", "mail_version"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


class ChrootPostfixInstance(PostfixInstance):
    """A PostfixInstance whose Postfix is the one installed in a Debian chroot."""

    def __init__(self, suite: str, **options: Any) -> None:
        self.suite = suite
        self.chroot = chroot_path(suite)
        options["base_dir"] = self.chroot / "tmp"
        super().__init__(**options)

    def _check_available(self) -> None:
        reason = chroot_missing(self.suite)
        if reason is not None:
            raise PostfixUnavailable(reason)
        # the chroot's own host path, inside the chroot, leads back to its root
        link = self.chroot / str(self.chroot).lstrip("/")
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/")

    def _set_ownership(self) -> None:
        """data/ belongs to the chroot's mail_owner; vmail/ to its nobody (uids of its passwd)."""
        owner = self.postconf("-dh", "mail_owner").strip()
        users = {}
        for line in (self.chroot / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 3:
                users[fields[0]] = (int(fields[2]), int(fields[3]))
        os.chown(self.data_dir, *users[owner])
        os.chown(self.mailbox_dir, *users["nobody"])

    def run(self, argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a Postfix command inside the chroot."""
        return super().run(["chroot", str(self.chroot), *argv], check=check)
