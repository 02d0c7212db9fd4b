"""Persistable positions in a followed log file: where to resume, and how to recognise it.

A :class:`FilePosition` names a byte offset *after* the last delivered line, in one
concrete file (the live log or one of its rotated segments). Inputs: file contents read
by :mod:`pfwatch.sources.follow`. Outputs: frozen positions that round-trip through a
compact JSON string (the opaque ``position`` token of :class:`pfwatch.events.LogEvent`).
Errors: :class:`pfwatch.errors.StateError` when a stored token does not parse.

A position is recognised on resume by content, not by name or inode alone (the lesson of
fail2ban, Fluent Bit's offset marker and Vector's fingerprints, see ecosystem.md §7.2):

- ``dev``/``ino``: a hint; inodes are reused and container restarts change ``dev``;
- ``head``: length and hash of the first ``min(offset, HEAD_BYTES)`` bytes of the file;
- ``marker``: length and hash of the ``min(offset, MARKER_BYTES)`` bytes before ``offset``.

A candidate file matches when it is at least ``offset`` bytes long and both hashes agree.
The head separates files; the marker catches a copytruncate'd file that regrew past the
old offset with a similar first line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pfwatch.errors import StateError

HEAD_BYTES = 1024
"""How many leading bytes identify a file (the first line of any real log is shorter)."""

MARKER_BYTES = 64
"""How many bytes before the offset must still be there when resuming."""

FORMAT_VERSION = 1


def fingerprint(data: bytes) -> str:
    """The hash used for heads and markers: 16 hex digits of BLAKE2b."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


EMPTY_FINGERPRINT = fingerprint(b"")


@dataclass(frozen=True, slots=True)
class FilePosition:
    """A resume point: ``offset`` bytes into the file identified by the other fields.

    ``path`` is the followed (live) path; ``file`` the name of the file the offset is in
    (the live path itself, or a rotated segment such as ``mail.log.1`` or ``….gz``, whose
    offsets count uncompressed bytes). Both are hints for a faster search.
    """

    path: str
    file: str
    dev: int
    ino: int
    offset: int
    head_len: int
    head_hash: str
    marker_len: int
    marker_hash: str

    @classmethod
    def start_of(cls, path: str, file: str = "", dev: int = 0, ino: int = 0) -> FilePosition:
        """The position before the first byte of a file (matches any file)."""
        return cls(path, file or path, dev, ino, 0, 0, EMPTY_FINGERPRINT, 0, EMPTY_FINGERPRINT)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "path": self.path,
            "file": self.file,
            "dev": self.dev,
            "ino": self.ino,
            "offset": self.offset,
            "head": [self.head_len, self.head_hash],
            "marker": [self.marker_len, self.marker_hash],
        }

    def to_json(self) -> str:
        """A compact JSON string; :meth:`from_json` reads it back."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> FilePosition:
        try:
            if data.get("v") != FORMAT_VERSION:
                raise ValueError(f"unknown position format version {data.get('v')!r}")
            head_len, head_hash = data["head"]
            marker_len, marker_hash = data["marker"]
            pos = cls(
                path=str(data["path"]),
                file=str(data["file"]),
                dev=int(data["dev"]),
                ino=int(data["ino"]),
                offset=int(data["offset"]),
                head_len=int(head_len),
                head_hash=str(head_hash),
                marker_len=int(marker_len),
                marker_hash=str(marker_hash),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(f"unusable follower position {data!r}: {exc}") from exc
        if not (
            0 <= pos.head_len <= min(pos.offset, HEAD_BYTES)
            and 0 <= pos.marker_len <= min(pos.offset, MARKER_BYTES)
        ):
            raise StateError(f"inconsistent follower position {data!r}")
        return pos

    @classmethod
    def from_json(cls, text: str) -> FilePosition:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StateError(f"follower position is not JSON: {text[:80]!r}") from exc
        return cls.from_dict(data)

    def matches(self, head: bytes, marker: bytes, size: int) -> bool:
        """Whether a file of ``size`` bytes, whose first ``head_len`` bytes are ``head`` and
        whose ``marker_len`` bytes before ``offset`` are ``marker``, is this position's file."""
        return (
            size >= self.offset
            and len(head) == self.head_len
            and len(marker) == self.marker_len
            and fingerprint(head) == self.head_hash
            and fingerprint(marker) == self.marker_hash
        )


def position_after(
    *,
    path: str,
    file: str,
    dev: int,
    ino: int,
    offset: int,
    head: bytes,
    marker: bytes,
) -> FilePosition:
    """Build the position at ``offset`` from the file's leading bytes and the bytes just
    before ``offset`` (either may be longer than needed; they are cut here)."""
    head = head[: min(offset, HEAD_BYTES)]
    marker = marker[-min(offset, MARKER_BYTES) :] if offset else b""
    if len(head) != min(offset, HEAD_BYTES) or len(marker) != min(offset, MARKER_BYTES):
        raise ValueError("position_after: not enough head or marker bytes for the offset")
    return FilePosition(
        path=path,
        file=file,
        dev=dev,
        ino=ino,
        offset=offset,
        head_len=len(head),
        head_hash=fingerprint(head),
        marker_len=len(marker),
        marker_hash=fingerprint(marker),
    )
