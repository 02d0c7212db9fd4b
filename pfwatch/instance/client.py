"""Log and SMTP helpers shared by every Postfix test-instance backend.

:class:`InstanceClient` needs only three things from a backend: the path of the maillog
as seen from this host, and the host and port where its SMTP service answers. Inputs:
those. Outputs: log text, waits on log lines, SMTP sessions and queue ids. Errors:
``TimeoutError`` (a wait ran out), :class:`PostfixStartError` (no banner), ``smtplib``
exceptions for refused mail.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from pfwatch.errors import PfwatchError

_QUEUED_AS = re.compile(r"queued as ([0-9A-Za-z]+)")


class PostfixStartError(PfwatchError):
    """Postfix was found but refused to start or did not answer SMTP in time."""


class InstanceClient:
    """Mixin: log reading and SMTP client for an instance with ``maillog``, ``host``, ``port``."""

    @property
    def maillog(self) -> Path:
        raise NotImplementedError

    @property
    def host(self) -> str:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Wait until the SMTP port answers with a 220 banner; return the banner line."""
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        while time.monotonic() < deadline:
            try:
                return self._banner()
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise PostfixStartError(
            f"no SMTP banner on {self.host}:{self.port} within {timeout}s ({last_error})\n"
            f"{self._log_tail()}"
        )

    def _banner(self) -> str:
        with socket.create_connection((self.host, self.port), timeout=5) as conn:
            reader = conn.makefile("rb")
            banner = reader.readline().decode("ascii", "replace").strip()
            if not banner.startswith("220"):
                raise OSError(f"unexpected banner {banner!r}")
            conn.sendall(b"QUIT\r\n")
            reader.readline()
            return banner

    # ----------------------------------------------------------------- log
    def log_offset(self) -> int:
        """Current size of the maillog: pass it as ``since`` to look only at newer lines."""
        try:
            return self.maillog.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with self.maillog.open("rb") as handle:
                handle.seek(since)
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, since: int = 0) -> list[str]:
        return self.log_text(since).splitlines()

    def wait_for_log(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, since: int = 0
    ) -> re.Match[str]:
        """Wait until a log line (after byte offset ``since``) matches; return the match."""
        regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.log_text(since))
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{regex.pattern!r} not logged within {timeout}s\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _log_tail(self, lines: int = 15) -> str:
        tail = self.log_lines()[-lines:]
        return "last maillog lines:\n" + "\n".join(tail) if tail else "(maillog empty)"

    # ----------------------------------------------------------------- SMTP
    @contextlib.contextmanager
    def open_session(self, helo: str = "client.pfwatch.test") -> Iterator[smtplib.SMTP]:
        """Hold one SMTP connection (after EHLO) for the duration of the block."""
        client = smtplib.SMTP(self.host, self.port, local_hostname=helo, timeout=30)
        try:
            client.ehlo()
            yield client
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()

    def send_mail(
        self,
        sender: str,
        recipients: str | Sequence[str],
        body: str = "pfwatch test message\n",
        *,
        subject: str = "pfwatch test",
        helo: str = "client.pfwatch.test",
    ) -> str:
        """Submit one message over SMTP; return Postfix's queue id."""
        rcpts = [recipients] if isinstance(recipients, str) else list(recipients)
        message = f"From: <{sender}>\r\nSubject: {subject}\r\n\r\n{body}"
        with self.open_session(helo) as client:
            client.mail(sender)
            for rcpt in rcpts:
                code, reply = client.rcpt(rcpt)
                if code >= 400:
                    raise smtplib.SMTPRecipientsRefused({rcpt: (code, reply)})
            code, reply = client.data(message.encode("utf-8"))
        found = _QUEUED_AS.search(reply.decode("utf-8", "replace"))
        if code != 250 or found is None:
            raise smtplib.SMTPDataError(code, reply)
        return found.group(1)
