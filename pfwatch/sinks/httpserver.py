"""A small HTTP/1.0 server whose threads and connections stay bounded under any client.

Why not ``ThreadingHTTPServer``: it gives every connection a thread for as long as the
client likes, so 400 connections that send half a request hold 400 threads. Here one
selector thread accepts connections, completes TLS handshakes and reads request heads
without blocking; only a complete head goes to a fixed pool of worker threads, which
answer one request and close (``Connection: close``; scrapers reconnect cheaply).

Limits (:class:`Limits`): ``max_connections`` open at once (when full, the oldest
connection still sending its head is dropped to make room, so a flood of half-open
connections cannot lock out a scraper that sends its request at once; when every slot is
being answered, the newcomer is refused); ``header_timeout`` from accept to the end of the
head, TLS handshake included; ``read_timeout`` of silence while reading or writing;
``max_head_bytes`` per request head (431 beyond). Threads: 1 + ``workers``.

Inputs: an address, a ``handle(sock, client_address, head)`` callable run in a worker,
an optional ``ssl.SSLContext``. Outputs: :class:`BoundedServer` with ``serve_forever``,
``shutdown``, ``server_close`` and counters (``stats``). Errors: ``OSError`` from binding.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

Handle = Callable[[socket.socket, tuple[str, int], bytes], None]

_HEAD_END = b"\r\n\r\n"
_REFUSED = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_TOO_LARGE = (
    b"HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of the server (see the module docstring)."""

    max_connections: int = 64
    workers: int = 4
    header_timeout: float = 10.0
    read_timeout: float = 10.0
    max_head_bytes: int = 16 * 1024


@dataclass(slots=True)
class Stats:
    """What the limits did, for tests and diagnostics."""

    accepted: int = 0
    evicted: int = 0
    refused: int = 0
    timed_out: int = 0
    answered: int = 0


@dataclass(slots=True)
class _Conn:
    sock: socket.socket
    address: tuple[str, int]
    accepted_at: float
    last_io: float
    head: bytearray = field(default_factory=bytearray)
    handshaking: bool = False


class BoundedServer:
    """Serves ``handle`` on ``(host, port)`` within :class:`Limits`."""

    def __init__(
        self,
        host: str,
        port: int,
        handle: Handle,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.stats = Stats()
        self._handle = handle
        self._ssl = ssl_context
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0]
        self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._reading: dict[int, _Conn] = {}  # by file descriptor, oldest first
        self._answering = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="pfwatch-http")
        self._stopping = threading.Event()
        self._stopped = threading.Event()

    @property
    def server_address(self) -> tuple[str, int]:
        """The bound host and port."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def serve_forever(self) -> None:
        """Run the selector loop until :meth:`shutdown`."""
        selector = self._selector
        selector.register(self._listener, selectors.EVENT_READ, "listen")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=self._next_timeout()):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        self._on_ready(key.data)
                self._expire(time.monotonic())
        finally:
            for conn in list(self._reading.values()):
                self._drop(conn)
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop the loop and wait for it; workers finish the request they answer."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._stopped.wait(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def server_close(self) -> None:
        """Release the port."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    # -- the selector thread ------------------------------------------------------------

    def _next_timeout(self) -> float:
        if not self._reading:
            return 1.0
        oldest = next(iter(self._reading.values()))
        left = oldest.accepted_at + self.limits.header_timeout - time.monotonic()
        return max(0.05, min(1.0, left))

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # EMFILE and the like: the connection waits in the backlog. Free a slot
                # held by a half-open client, or pause, so the loop does not spin.
                if self._reading:
                    self.stats.evicted += 1
                    self._drop(next(iter(self._reading.values())))
                else:
                    time.sleep(0.05)
                return
            self.stats.accepted += 1
            if not self._make_room():
                self.stats.refused += 1
                with contextlib.suppress(OSError):
                    sock.setblocking(False)
                    if self._ssl is None:
                        sock.send(_REFUSED)
                sock.close()
                continue
            sock.setblocking(False)
            now = time.monotonic()
            conn = _Conn(sock, (str(address[0]), int(address[1])), now, now)
            if self._ssl is not None:
                try:
                    conn.sock = self._ssl.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                except (ssl.SSLError, OSError):
                    sock.close()
                    continue
                conn.handshaking = True
            self._reading[conn.sock.fileno()] = conn
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _make_room(self) -> bool:
        with self._lock:
            busy = self._answering
        if len(self._reading) + busy < self.limits.max_connections:
            return True
        if not self._reading:
            return False
        self.stats.evicted += 1
        self._drop(next(iter(self._reading.values())))
        return True

    def _on_ready(self, conn: _Conn) -> None:
        try:
            if conn.handshaking:
                conn.sock.do_handshake()  # type: ignore[attr-defined]
                conn.handshaking = False
                self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
            while True:
                chunk = conn.sock.recv(16 * 1024)
                if not chunk:
                    self._drop(conn)
                    return
                conn.head += chunk
                conn.last_io = time.monotonic()
                if len(conn.head) > self.limits.max_head_bytes:
                    self._reject(conn, _TOO_LARGE)
                    return
                if _HEAD_END in conn.head:
                    self._dispatch(conn)
                    return
        except ssl.SSLWantReadError:
            return
        except ssl.SSLWantWriteError:
            self._selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        except (BlockingIOError, InterruptedError):
            return
        except (ssl.SSLError, OSError):
            self._drop(conn)

    def _expire(self, now: float) -> None:
        limits = self.limits
        for conn in list(self._reading.values()):
            if (
                now - conn.accepted_at > limits.header_timeout
                or now - conn.last_io > limits.read_timeout
            ):
                self.stats.timed_out += 1
                self._drop(conn)

    def _forget(self, conn: _Conn) -> None:
        self._reading.pop(conn.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)

    def _drop(self, conn: _Conn) -> None:
        self._forget(conn)
        conn.sock.close()

    def _reject(self, conn: _Conn, response: bytes) -> None:
        self._forget(conn)
        with contextlib.suppress(OSError):
            conn.sock.send(response)
        conn.sock.close()

    def _dispatch(self, conn: _Conn) -> None:
        self._forget(conn)
        with self._lock:
            self._answering += 1
        try:
            self._pool.submit(self._answer, conn)
        except RuntimeError:  # shutting down
            self._done(conn)

    # -- worker threads -----------------------------------------------------------------

    def _answer(self, conn: _Conn) -> None:
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(self.limits.read_timeout)
            self._handle(conn.sock, conn.address, bytes(conn.head))
            self.stats.answered += 1
        except OSError:
            pass
        finally:
            self._done(conn)

    def _done(self, conn: _Conn) -> None:
        with contextlib.suppress(OSError):
            conn.sock.close()
        with self._lock:
            self._answering -= 1
