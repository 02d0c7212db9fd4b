"""Read a Postfix release's source files: from a git clone at a tag, or an unpacked tree.

Shared by the generator scripts in scripts/. A source is either a git directory (bare or
not) of the Postfix repository plus a tag (``v3.10.13``), read with ``git show`` /
``git ls-tree`` and nothing checked out, or a directory holding ``src/`` (Debian's
``apt-get source postfix`` tree, an unpacked tarball). Paths are relative to the
directory that holds ``src/`` (the git mirror keeps it below ``postfix/``).

Errors: :class:`SourceError` with the command or path that failed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_VERSION = re.compile(r'#define\s+MAIL_VERSION_NUMBER\s+"([^"]+)"')


class SourceError(Exception):
    """The source tree or tag cannot be read."""


@dataclass(frozen=True)
class PostfixSource:
    """One release's source: ``git_dir`` + ``tag``, or ``tree`` (holding ``src/``)."""

    git_dir: Path | None = None
    tag: str = ""
    tree: Path | None = None

    def _git(self, *args: str) -> str:
        assert self.git_dir is not None
        done = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        if done.returncode != 0:
            raise SourceError(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def _prefix(self) -> str:
        """``postfix/`` in the upstream mirror (the tree has src/ one level down)."""
        names = self._git("ls-tree", "--name-only", self.tag).split()
        return "postfix/" if "postfix" in names and "src" not in names else ""

    def files(self, under: str = "src/", suffix: str = ".c") -> list[str]:
        """Paths (relative to the src/ parent) below ``under`` ending in ``suffix``."""
        if self.tree is not None:
            root = self.tree / under
            found = (p.relative_to(self.tree).as_posix() for p in root.rglob(f"*{suffix}"))
            return sorted(found)
        prefix = self._prefix()
        listing = self._git("ls-tree", "-r", "--name-only", self.tag, "--", prefix + under)
        return sorted(line[len(prefix) :] for line in listing.splitlines() if line.endswith(suffix))

    def read(self, path: str) -> str:
        """The text of one file (relative to the src/ parent)."""
        if self.tree is not None:
            try:
                return (self.tree / path).read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise SourceError(f"{self.tree / path}: {exc}") from exc
        return self._git("show", f"{self.tag}:{self._prefix()}{path}")

    def read_many(self, paths: list[str]) -> Iterator[tuple[str, str]]:
        """``(path, text)`` for each path (one ``git cat-file --batch`` for a git source)."""
        if self.tree is not None:
            for path in paths:
                yield path, self.read(path)
            return
        assert self.git_dir is not None
        prefix = self._prefix()
        request = "".join(f"{self.tag}:{prefix}{path}\n" for path in paths)
        done = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "cat-file", "--batch"],
            input=request.encode(),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise SourceError(f"git cat-file: {done.stderr.decode(errors='replace').strip()}")
        data = done.stdout
        offset = 0
        for path in paths:
            end = data.index(b"\n", offset)
            header = data[offset:end].split()
            if len(header) < 3 or header[1] != b"blob":
                raise SourceError(f"{self.tag}:{prefix}{path}: not found")
            size = int(header[2])
            yield path, data[end + 1 : end + 1 + size].decode("utf-8", errors="replace")
            offset = end + 1 + size + 1

    def version(self) -> str:
        """``MAIL_VERSION_NUMBER`` of src/global/mail_version.h (e.g. ``3.10.13``)."""
        found = _VERSION.search(self.read("src/global/mail_version.h"))
        if found is None:
            raise SourceError("src/global/mail_version.h: no MAIL_VERSION_NUMBER")
        return found.group(1)


def open_source(location: str, tag: str = "") -> PostfixSource:
    """A git directory (with ``tag``) or a source tree, from a path given on a command line."""
    path = Path(location)
    if (path / "src").is_dir() and not tag:
        return PostfixSource(tree=path)
    if (path / "postfix" / "src").is_dir() and not tag:
        return PostfixSource(tree=path / "postfix")
    for git_dir in (path / ".git", path):
        if (git_dir / "HEAD").is_file() and (git_dir / "objects").is_dir():
            if not tag:
                raise SourceError(f"{location} is a git directory: name a release tag")
            return PostfixSource(git_dir=git_dir, tag=tag)
    raise SourceError(f"{location}: neither a Postfix source tree (src/) nor a git directory")
