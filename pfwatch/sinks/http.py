"""The HTTP endpoint of ``pfwatch watch``: metrics, status and health, in a thread.

Inputs: a Prometheus registry, a ``status()`` callable returning a JSON-ready dict, a
``health()`` callable returning :class:`Health`, optionally a :class:`WebConfig` (TLS,
basic auth, extra headers) and :class:`Limits`. Outputs: a
:class:`pfwatch.sinks.httpserver.BoundedServer` (threads and connections bounded,
read and header timeouts) serving

- ``/metrics``: Prometheus text exposition (OpenMetrics when the scraper asks for it);
- ``/status``: the status document as JSON;
- ``/healthz``: ``{"ok": ..., "sources": ...}``, 200 when healthy, 503 when a source fails;
- ``/``: a small landing page linking the others.

Errors: :class:`pfwatch.errors.UsageError` when the address cannot be bound (port in use,
bad host). A callable that raises gives a 500 with a JSON error, the server stays up.
With basic auth configured every path answers 401 without valid credentials.

The default port, 29125, was chosen outside the Prometheus exporter range 9100–9999 (full,
and 9154 is postfix_exporter's, which users run beside pfwatch) and below Linux's
ephemeral range 32768–60999 (so an outgoing connection cannot hold it at start-up); it is
not in the IANA list shipped as /etc/services. The default host is 127.0.0.1.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from pfwatch import __version__
from pfwatch.errors import UsageError
from pfwatch.settings import DEFAULT_HOST, DEFAULT_PORT
from pfwatch.sinks.httpserver import BoundedServer, Limits
from pfwatch.sinks.metrics import MetricsSnapshot
from pfwatch.sinks.webconfig import WebConfig


@dataclass(frozen=True, slots=True)
class Health:
    """Health of the service: ``ok`` is False when any source fails."""

    ok: bool
    sources: Mapping[str, Any] = field(default_factory=dict)
    state_ok: bool = True

    def document(self) -> dict[str, Any]:
        """The JSON body of ``/healthz``."""
        return {"ok": self.ok, "sources": dict(self.sources), "state_ok": self.state_ok}


def health_from(snapshot: MetricsSnapshot) -> Health:
    """Health from the metrics snapshot: not ok when any source is down.

    A state database that cannot be written is reported (``state_ok``) but does not
    fail the check: pfwatch keeps working from memory, and restarting would not help.
    """
    sources = {
        name: {
            "up": status.up,
            "error": status.error,
            "lag_seconds": status.lag_seconds,
        }
        for name, status in sorted(snapshot.sources.items())
    }
    ok = all(status.up for status in snapshot.sources.values())
    return Health(ok=ok, sources=sources, state_ok=snapshot.state_ok)


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unprotected(host: str, web: WebConfig | None) -> str | None:
    """Why serving on ``host`` with ``web`` deserves a warning, or None when it does not:
    beyond loopback, anyone who can reach the port reads /status without basic auth."""
    if is_loopback(host) or (web is not None and web.auth is not None):
        return None
    return "the endpoint listens beyond loopback without basic auth (--web-config)"


class HttpEndpoint:
    """Serves the endpoints from a daemon thread; ``close`` stops it."""

    def __init__(
        self,
        registry: CollectorRegistry,
        status: Callable[[], Mapping[str, Any]],
        health: Callable[[], Health],
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        web_config: WebConfig | None = None,
        limits: Limits | None = None,
    ) -> None:
        web = web_config or WebConfig()
        handler = _handler_class(registry, status, health, web)

        def handle(sock: socket.socket, address: tuple[str, int], head: bytes) -> None:
            handler((sock, head), address, self._server)  # type: ignore[arg-type]

        try:
            self._server = BoundedServer(
                host, port, handle, ssl_context=web.ssl_context, limits=limits
            )
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.scheme = "https" if web.ssl_context is not None else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="pfwatch-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked)."""
        return self._server.server_address

    @property
    def server(self) -> BoundedServer:
        """The server, for its limits and counters."""
        return self._server

    def start(self) -> HttpEndpoint:
        """Start serving in the background; returns self."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


class _SocketWriter(io.BufferedIOBase):
    """``wfile`` of a handler: every write is a ``sendall`` (no partial writes)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any, /) -> int:
        view = memoryview(data)
        self._sock.sendall(view)
        return len(view)


def _handler_class(
    registry: CollectorRegistry,
    status: Callable[[], Mapping[str, Any]],
    health: Callable[[], Health],
    web: WebConfig,
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"pfwatch/{__version__}"

        def setup(self) -> None:
            sock, head = self.request
            self.connection = sock
            self.rfile = io.BytesIO(head)
            self.wfile = _SocketWriter(sock)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if web.auth is not None and not self._authorized():
                body = b'{"error": "unauthorized"}\n'
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="pfwatch", charset="UTF-8"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self._extra_headers()
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            try:
                if path == "/metrics":
                    encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                    self._send(200, content_type, encoder(registry))
                elif path == "/status":
                    self._json(200, dict(status()))
                elif path == "/healthz":
                    result = health()
                    self._json(200 if result.ok else 503, result.document())
                elif path == "/":
                    self._send(200, "text/html; charset=utf-8", _LANDING)
                else:
                    self._json(404, {"error": f"no such page: {path}"})
            except Exception as exc:
                self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

        def do_HEAD(self) -> None:
            self.do_GET()

        def _authorized(self) -> bool:
            assert web.auth is not None
            scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, sep, password = decoded.partition(":")
            return bool(sep) and web.auth.check(user, password)

        def _extra_headers(self) -> None:
            for name, value in web.headers.items():
                self.send_header(name, value)

        def _json(self, code: int, body: Mapping[str, Any]) -> None:
            text = json.dumps(body, sort_keys=True, default=str) + "\n"
            self._send(code, "application/json", text.encode("utf-8"))

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self._extra_headers()
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would flood the event stream

    return Handler


_LANDING = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>pfwatch</title></head>
<body><h1>pfwatch {escape(__version__)}</h1>
<p>Tells when Postfix configuration edits actually go live.</p>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/status">/status</a>: pending changes, processes, last events (JSON)</li>
<li><a href="/healthz">/healthz</a>: health (200 or 503, JSON)</li>
</ul></body></html>
""".encode()
