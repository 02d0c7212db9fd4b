"""A tiny in-process SMTP server on 127.0.0.1 that accepts and keeps every message.

The test instance relays outbound mail here (``relayhost = [127.0.0.1]:<port>``) so that
nothing leaves the machine and tests can see what Postfix relayed. Input: SMTP sessions
from Postfix's smtp(8) client. Output: :attr:`SmtpSink.messages` (envelope and data).
Errors: none raised to clients; malformed commands get SMTP 500-class replies.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class SinkMessage:
    """One message received by the sink."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes


def _address(argument: str) -> str:
    """``FROM:<a@b> SIZE=1`` -> ``a@b``."""
    value = argument.split(":", 1)[1].strip() if ":" in argument else argument
    return value.split(" ", 1)[0].strip("<>")


class _Handler(socketserver.StreamRequestHandler):
    server: _Server
    timeout = 30

    def _reply(self, text: str) -> None:
        self.wfile.write(text.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self._reply("220 pfwatch-sink ESMTP")
        mail_from, rcpts = "", list[str]()
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250-pfwatch-sink\r\n250 8BITMIME" if verb == "EHLO" else "250 ok")
            elif verb == "MAIL":
                mail_from, rcpts = _address(argument), []
                self._reply("250 2.1.0 ok")
            elif verb == "RCPT":
                rcpts.append(_address(argument))
                self._reply("250 2.1.5 ok")
            elif verb == "DATA":
                self._reply("354 go ahead")
                self.server.keep(SinkMessage(mail_from, tuple(rcpts), self._read_data()))
                self._reply("250 2.0.0 Ok: queued as SINK")
            elif verb in ("RSET", "NOOP"):
                self._reply("250 ok")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 5.5.2 command not implemented")

    def _read_data(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            raw = self.rfile.readline(1 << 20)
            if raw in (b".\r\n", b".\n", b""):
                return b"".join(chunks)
            chunks.append(raw[1:] if raw.startswith(b"..") else raw)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: list[SinkMessage] = []

    def keep(self, message: SinkMessage) -> None:
        with self.lock:
            self.received.append(message)


class SmtpSink:
    """Start with :meth:`start` (binds a kernel-picked port), stop with :meth:`stop`."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SMTP sink not started")
        return int(self._server.server_address[1])

    @property
    def messages(self) -> list[SinkMessage]:
        if self._server is None:
            return []
        with self._server.lock:
            return list(self._server.received)

    def start(self) -> SmtpSink:
        if self._server is None:
            self._server = _Server()
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="pfwatch-smtp-sink",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        if self._thread is not None and self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
