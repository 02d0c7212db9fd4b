"""The journald source: ``journalctl -o json`` as a supervised child process.

Inputs: the journalctl command (injectable, so tests use a fake), journal matches
(default ``SYSLOG_FACILITY=2``, the mail facility Postfix logs to), optional ``--unit`` and
``--identifier`` filters, and the cursor of the last entry the caller committed.
Outputs: :class:`JournalRecord` objects, each carrying its ``__CURSOR`` as ``checkpoint``.
Errors: :class:`pfwatch.errors.SourceUnavailable` when journalctl cannot be started at all
(missing, not executable) or, in one-shot mode, fails; while following, a dying journalctl
is restarted after the last delivered cursor and the failure is reported by :meth:`notices`.

Why not ``--cursor-file``: on systemd 252 (Debian 12) journalctl never writes that file
(systemd#26746, ecosystem.md §0.3), so the caller persists each record's cursor itself and
the child is started with ``--after-cursor``. ``--lines=all`` is always passed with it:
``--follow`` alone shows only the last ten entries, cursor or not (systemd#4739). Older
journalctl may repeat the entry at the cursor (systemd PR #30336): entries whose cursor
was just delivered are dropped.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pfwatch.errors import SourceUnavailable

MAX_RECORD_BYTES = 4 * 1024 * 1024
_PERMISSION_HINTS = ("insufficient permissions", "not seeing messages from other users")


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journal entry as journalctl's JSON output gives it."""

    fields: Mapping[str, Any]
    cursor: str

    @property
    def checkpoint(self) -> str:
        return self.cursor

    @property
    def data(self) -> bytes:
        """``MESSAGE`` as bytes (journalctl gives non-UTF-8 messages as arrays of bytes)."""
        return _field_bytes(self.fields.get("MESSAGE"))

    @property
    def at(self) -> float | None:
        """``__REALTIME_TIMESTAMP`` in POSIX seconds."""
        value = self.fields.get("__REALTIME_TIMESTAMP")
        try:
            return int(value) / 1e6 if value is not None else None
        except (TypeError, ValueError):
            return None

    def as_syslog_line(self) -> bytes:
        """The entry as an RFC 3339 syslog line, ``TIME HOST IDENT[PID]: MESSAGE``, for the
        same line parser that reads log files."""
        at = self.at
        stamp = (
            datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
            if at is not None
            else "1970-01-01T00:00:00.000000+00:00"
        )
        host = _field_bytes(self.fields.get("_HOSTNAME")) or b"localhost"
        ident = _field_bytes(self.fields.get("SYSLOG_IDENTIFIER")) or b"unknown"
        pid = _field_bytes(self.fields.get("SYSLOG_PID") or self.fields.get("_PID"))
        tag = ident + b"[" + pid + b"]" if pid else ident
        return stamp.encode() + b" " + host + b" " + tag + b": " + self.data


def _field_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value)
    return str(value).encode()


class JournalSource:
    """Reads the journal through journalctl; see the module documentation.

    Without ``cursor``: ``since`` (a journalctl ``--since`` value) if given, else ``start``
    (``"end"``: only new entries; ``"beginning"``: the whole journal). ``follow=False`` reads
    what is there and stops (catch-up, ``explain``).
    """

    def __init__(
        self,
        *,
        journalctl: str = "journalctl",
        matches: Sequence[str] = ("SYSLOG_FACILITY=2",),
        units: Sequence[str] = (),
        identifiers: Sequence[str] = (),
        cursor: str | None = None,
        since: str | None = None,
        start: Literal["beginning", "end"] = "end",
        directory: str | None = None,
        follow: bool = True,
        poll_interval: float = 0.25,
        restart_backoff: tuple[float, float] = (1.0, 30.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journalctl = journalctl
        self.matches = tuple(matches)
        self.units = tuple(units)
        self.identifiers = tuple(identifiers)
        self.since = since
        self.start = start
        self.directory = directory
        self.following = follow
        self.poll_interval = poll_interval
        self.restarts = 0
        self._cursor = cursor
        self._recent: deque[str] = deque(maxlen=16)
        self._backoff_min, self._backoff_max = restart_backoff
        self._backoff = self._backoff_min
        self._clock = clock
        self._proc: subprocess.Popen[bytes] | None = None
        self._restart_at: float | None = None
        self._buffer = b""
        self._stderr = b""
        self._notices: list[str] = []
        self._done = False

    # -- public API ---------------------------------------------------------------------

    @property
    def cursor(self) -> str | None:
        """The cursor of the last delivered entry (or the one resumed from)."""
        return self._cursor

    @property
    def done(self) -> bool:
        """One-shot mode: journalctl has exited and everything was delivered."""
        return self._done

    def argv(self) -> list[str]:
        """The journalctl command line for the next start."""
        argv = [self.journalctl, "--output=json", "--no-pager", "--all"]
        if self.directory is not None:
            argv.append(f"--directory={self.directory}")
        if self.following:
            argv.append("--follow")
        if self._cursor is not None:
            argv += [f"--after-cursor={self._cursor}", "--lines=all"]
        elif self.since is not None:
            argv += [f"--since={self.since}", "--lines=all"]
        else:
            argv.append(
                "--lines=all" if self.start == "beginning" or not self.following else "--lines=0"
            )
        argv += [f"--unit={unit}" for unit in self.units]
        argv += [f"--identifier={ident}" for ident in self.identifiers]
        argv += list(self.matches)
        return argv

    def poll(self) -> list[JournalRecord]:
        """Entries available now; starts or restarts journalctl as needed. The first start
        raises :class:`SourceUnavailable` if journalctl cannot run at all."""
        now = self._clock()
        if self._proc is None:
            if self._done or (self._restart_at is not None and now < self._restart_at):
                return []
            self._spawn(first=self.restarts == 0 and self._restart_at is None)
            if self._proc is None:
                return []
        proc = self._proc
        assert proc.stdout is not None and proc.stderr is not None
        self._drain_stderr(proc)
        chunks = []
        eof = False
        while True:
            try:
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        records = self._parse(b"".join(chunks))
        if eof:
            self._exited(proc, now)
        return records

    def follow(self, stop: threading.Event) -> Iterator[JournalRecord]:
        """Blocking iteration until ``stop`` is set (or, one-shot, journalctl is done)."""
        while not stop.is_set() and not self._done:
            records = self.poll()
            yield from records
            if not records:
                stop.wait(self.poll_interval)

    def records(self) -> Iterator[JournalRecord]:
        """One-shot catch-up: every matching entry after the cursor, then stop. Raises
        :class:`SourceUnavailable` if journalctl fails."""
        if self.following:
            raise ValueError("records() needs a JournalSource built with follow=False")
        never = threading.Event()
        yield from self.follow(never)

    def notices(self) -> list[str]:
        found, self._notices = self._notices, []
        return found

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> JournalSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _spawn(self, first: bool) -> None:
        argv = self.argv()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except FileNotFoundError as exc:
            self._unavailable(first, f"command not found ({exc.filename or argv[0]}); install "
                              "systemd's journalctl or read a log file instead")  # fmt: skip
            return
        except PermissionError:
            self._unavailable(first, f"permission denied running {argv[0]}")
            return
        assert proc.stdout is not None and proc.stderr is not None
        os.set_blocking(proc.stdout.fileno(), False)
        os.set_blocking(proc.stderr.fileno(), False)
        self._proc = proc
        self._restart_at = None
        self._buffer = b""
        self._stderr = b""

    def _unavailable(self, first: bool, message: str) -> None:
        if first:
            raise SourceUnavailable("journalctl", message)
        self._notices.append(f"journalctl: {message}")
        self._schedule_restart(self._clock())

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        while True:
            try:
                chunk = os.read(proc.stderr.fileno(), 1 << 14)
            except BlockingIOError:
                return
            if not chunk:
                return
            self._stderr = (self._stderr + chunk)[-8192:]
            text = chunk.decode("utf-8", "replace").lower()
            if any(hint in text for hint in _PERMISSION_HINTS):
                self._notices.append(
                    "journalctl: not allowed to read the whole journal; run pfwatch in the "
                    "systemd-journal or adm group"
                )

    def _parse(self, data: bytes) -> list[JournalRecord]:
        records: list[JournalRecord] = []
        data = self._buffer + data
        *complete, self._buffer = data.split(b"\n")
        if len(self._buffer) > MAX_RECORD_BYTES:
            self._notices.append(f"journalctl: dropped an entry over {MAX_RECORD_BYTES} bytes")
            self._buffer = b""
        for raw in complete:
            if not raw.strip():
                continue
            try:
                fields = json.loads(raw)
                cursor = fields["__CURSOR"]
            except (ValueError, KeyError, TypeError):
                self._notices.append(f"journalctl: unusable output line {raw[:80]!r}")
                continue
            if cursor == self._cursor or cursor in self._recent:
                continue  # repeated at the boundary by older journalctl versions
            self._cursor = cursor
            self._recent.append(cursor)
            records.append(JournalRecord(fields, cursor))
        if records:
            self._backoff = self._backoff_min  # it works again: the next failure restarts fast
        return records

    def _exited(self, proc: subprocess.Popen[bytes], now: float) -> None:
        self._drain_stderr(proc)
        status = proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        self._proc = None
        last = self._stderr.decode("utf-8", "replace").strip().splitlines()
        reason = f"exited with status {status}" + (f": {last[-1]}" if last else "")
        if not self.following:
            self._done = True
            if status != 0:
                raise SourceUnavailable("journalctl", f"{' '.join(self.argv())} {reason}")
            return
        self._notices.append(f"journalctl {reason}; restarting after the last cursor")
        self._schedule_restart(now)

    def _schedule_restart(self, now: float) -> None:
        self._restart_at = now + self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)
        self.restarts += 1
