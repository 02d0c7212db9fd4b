"""The hardened endpoint: --web-config (TLS, basic auth), timeouts, the connection cap.

The half-open flood is the issue's measurement: 400 connections that send half a
request. With ``ThreadingHTTPServer`` they held 412 threads; here the thread count must
stay at 1 + workers beyond the test's own, and scrapes keep answering meanwhile.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from pfwatch.errors import UsageError
from pfwatch.settings import load_settings, parse_listen
from pfwatch.sinks.http import DEFAULT_HOST, Health, HttpEndpoint, is_loopback, unprotected
from pfwatch.sinks.httpserver import Limits
from pfwatch.sinks.metrics import MetricsSnapshot, PfwatchMetrics
from pfwatch.sinks.webconfig import WebConfig, load_web_config

HALF_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"


def serve(web: WebConfig | None = None, limits: Limits | None = None) -> HttpEndpoint:
    metrics = PfwatchMetrics(lambda: MetricsSnapshot(now=0.0, config_digest="d"))
    return HttpEndpoint(
        metrics.registry,
        lambda: {"pending": []},
        lambda: Health(ok=True),
        host="127.0.0.1",
        port=0,
        web_config=web,
        limits=limits,
    ).start()


@pytest.fixture
def endpoint_factory() -> Iterator[list[HttpEndpoint]]:
    started: list[HttpEndpoint] = []
    yield started
    for endpoint in started:
        endpoint.close()


def url(endpoint: HttpEndpoint, path: str = "/metrics") -> str:
    host, port = endpoint.address
    return f"{endpoint.scheme}://{'localhost' if endpoint.scheme == 'https' else host}:{port}{path}"


def fetch(
    target: str, *, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(target, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext"),
            *("subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()


# -- web config: the happy paths --------------------------------------------------------


def test_tls_and_basic_auth(
    tmp_path: Path, certificate: tuple[Path, Path], endpoint_factory: list[HttpEndpoint]
) -> None:
    cert, key = certificate
    config = write_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"  min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        f"basic_auth_users:\n  prometheus: '{HASH}'\n",
        mode=0o644,  # no key inside: world-readable is fine
    )
    web = load_web_config(config)
    endpoint = serve(web)
    endpoint_factory.append(endpoint)
    client = ssl.create_default_context(cafile=str(cert))
    assert fetch(url(endpoint), context=client)[0] == 401
    assert fetch(url(endpoint), headers=basic("prometheus", "wrong"), context=client)[0] == 401
    assert fetch(url(endpoint), headers=basic("nobody", "s3cret"), context=client)[0] == 401
    code, body = fetch(url(endpoint), headers=basic("prometheus", "s3cret"), context=client)
    assert code == 200 and b'pfwatch_config_info{digest="d"} 1.0' in body
    credentials = basic("prometheus", "s3cret")
    request = urllib.request.Request(url(endpoint, "/healthz"), headers=credentials)
    with urllib.request.urlopen(request, timeout=10, context=client) as response:
        assert response.headers["X-Frame-Options"] == "deny"
    # plain HTTP to the TLS port gets no answer
    host, port = endpoint.address
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        fetch(f"http://{host}:{port}/metrics")


def test_inline_key_in_private_file(
    tmp_path: Path, certificate: tuple[Path, Path], endpoint_factory: list[HttpEndpoint]
) -> None:
    cert, key = certificate
    indent = lambda text: "".join(f"    {line}\n" for line in text.splitlines())  # noqa: E731
    config = write_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert: |\n{indent(cert.read_text())}"
        f"  key: |\n{indent(key.read_text())}",
    )
    endpoint = serve(load_web_config(config))
    endpoint_factory.append(endpoint)
    client = ssl.create_default_context(cafile=str(cert))
    assert fetch(url(endpoint), context=client)[0] == 200


def test_empty_config_means_plain_http(tmp_path: Path) -> None:
    web = load_web_config(write_config(tmp_path / "web.yml", "# nothing\n"))
    assert web.ssl_context is None and web.auth is None


# -- web config: bad input, each with the file and line ----------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config:\n  cert_file: [a\n", "web.yml:3: malformed YAML"),
        ("basic_auth_users:\n  prometheus: plain\n", "web.yml:2: basic_auth_users"),
        ("tls_server_config:\n  certfile: x\n", "web.yml:2: unknown key 'certfile'"),
        ("tls_config:\n  cert_file: x\n", "web.yml:1: unknown key 'tls_config'"),
        ("tls_server_config:\n  cipher_suites: [x]\n", "web.yml:2: cipher_suites is not supp"),
        ("tls_server_config:\n  key_file: /nonexistent/k\n", "web.yml:1: tls_server_config needs"),
        ("- just\n- a list\n", "web.yml:1: expected a mapping"),
        ("basic_auth_users:\n  a: '$2b$04$x'\n  a: '$2b$04$y'\n", "web.yml:3: duplicate key"),
    ],
)
def test_malformed_web_config(tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path / "web.yml", text)
    with pytest.raises(UsageError) as caught:
        load_web_config(config)
    assert message in str(caught.value)
    assert str(tmp_path) in str(caught.value)


def test_missing_web_config(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"web\.yml: web config file not found"):
        load_web_config(tmp_path / "web.yml")


def test_world_readable_inline_key_is_refused(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    body = key.read_text().replace("\n", "\n    ")
    config = write_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {cert}\n  key: |\n    {body}\n",
        mode=0o644,
    )
    with pytest.raises(UsageError, match=r"web\.yml:3: the file holds a private key"):
        load_web_config(config)


def test_world_readable_key_file_is_refused(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    exposed = tmp_path / "exposed.key"
    exposed.write_bytes(key.read_bytes())
    exposed.chmod(0o644)
    config = write_config(
        tmp_path / "web.yml", f"tls_server_config:\n  cert_file: {cert}\n  key_file: {exposed}\n"
    )
    with pytest.raises(UsageError, match=r"web\.yml:3: key_file .* can be read by any local"):
        load_web_config(config)


def test_certificate_and_key_that_do_not_match(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, _ = certificate
    not_a_key = write_config(tmp_path / "other.key", cert.read_text())
    config = write_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {not_a_key}\n",
    )
    with pytest.raises(UsageError, match=r"web\.yml:2: certificate and key do not load"):
        load_web_config(config)


def test_watch_refuses_to_start_half_configured(tmp_path: Path) -> None:
    """A bad --web-config stops `pfwatch watch` before it creates state or binds a port."""
    config = write_config(tmp_path / "web.yml", "basic_auth_users:\n  u: nothash\n")
    state = tmp_path / "state"
    maillog = tmp_path / "mail.log"
    maillog.touch()
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pfwatch", "watch", "--web-config", str(config)),
            *("--state-dir", str(state), "--config-dir", str(tmp_path), "--maillog", str(maillog)),
            *("--listen", "127.0.0.1:1"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PFWATCH_DEBUG": ""},
    )
    assert result.returncode == 3, result.stderr
    assert f"{config}:2: basic_auth_users" in result.stderr
    assert not state.exists()
    assert result.stdout == ""


# -- loopback unless asked --------------------------------------------------------------


def test_listens_on_loopback_unless_asked(tmp_path: Path) -> None:
    assert DEFAULT_HOST == "127.0.0.1" and is_loopback(DEFAULT_HOST)
    settings = load_settings({}, {}, exists=lambda _: False)
    assert is_loopback(settings.listen_host)
    assert parse_listen(":9999") == ("127.0.0.1", 9999)  # a bare port is not "everywhere"
    assert not is_loopback("0.0.0.0") and not is_loopback("::")
    assert is_loopback("::1") and is_loopback("localhost")


# -- timeouts and the cap ---------------------------------------------------------------


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes ``sock`` (reads EOF), None if it stays open."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def test_read_timeout_drops_a_silent_client(endpoint_factory: list[HttpEndpoint]) -> None:
    endpoint = serve(limits=Limits(header_timeout=30, read_timeout=0.5))
    endpoint_factory.append(endpoint)
    with socket.create_connection(endpoint.address) as sock:
        sock.sendall(HALF_REQUEST)
        took = closed_within(sock, 5)
    assert took is not None and took < 3
    assert endpoint.server.stats.timed_out == 1


def test_header_timeout_drops_a_slow_drip(endpoint_factory: list[HttpEndpoint]) -> None:
    """One byte every 0.1 s never trips the read timeout, but the header timeout ends it."""
    endpoint = serve(limits=Limits(header_timeout=1.0, read_timeout=30))
    endpoint_factory.append(endpoint)
    start = time.monotonic()
    with socket.create_connection(endpoint.address) as sock:
        closed = False
        for byte in HALF_REQUEST * 10:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - start > 8:
                break
        if not closed:
            closed = closed_within(sock, 3) is not None
    assert closed
    assert time.monotonic() - start < 6
    assert endpoint.server.stats.timed_out == 1


def test_oversized_head_gets_431(endpoint_factory: list[HttpEndpoint]) -> None:
    endpoint = serve(limits=Limits(max_head_bytes=1024))
    endpoint_factory.append(endpoint)
    with socket.create_connection(endpoint.address, timeout=5) as sock:
        sock.sendall(HALF_REQUEST + b"X-Pad: " + b"a" * 2000 + b"\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 431")


def test_connection_cap_evicts_half_open_first(endpoint_factory: list[HttpEndpoint]) -> None:
    endpoint = serve(limits=Limits(max_connections=8))
    endpoint_factory.append(endpoint)
    held = [socket.create_connection(endpoint.address) for _ in range(8)]
    try:
        for sock in held:
            sock.sendall(HALF_REQUEST)
        assert fetch(url(endpoint))[0] == 200
        assert endpoint.server.stats.evicted >= 1
        open_ones = sum(closed_within(sock, 0.2) is None for sock in held)
        assert open_ones <= 7
    finally:
        for sock in held:
            sock.close()


def test_half_open_flood_keeps_threads_bounded_and_scrapes_answering(
    endpoint_factory: list[HttpEndpoint],
) -> None:
    before = threading.active_count()
    endpoint = serve()
    endpoint_factory.append(endpoint)
    assert fetch(url(endpoint))[0] == 200  # warm: the server thread and one worker
    flood: list[socket.socket] = []
    try:
        for _ in range(400):
            sock = socket.create_connection(endpoint.address)
            sock.sendall(HALF_REQUEST)
            flood.append(sock)
        time.sleep(0.5)
        codes = [fetch(url(endpoint))[0] for _ in range(20)]
        during = threading.active_count()
        tasks = len(os.listdir("/proc/self/task"))
    finally:
        for sock in flood:
            sock.close()
    limits = endpoint.server.limits
    print(f"\nhalf-open flood: {len(flood)} connections, threads before {before}, during {during}")
    print(f"(endpoint: {during - before}; process tasks {tasks}); scrapes {codes.count(200)}/20")
    assert codes == [200] * 20
    assert during - before <= 1 + limits.workers
    assert endpoint.server.stats.evicted >= 400 - limits.max_connections


def test_client_certificates_required_and_verified(
    tmp_path: Path, certificate: tuple[Path, Path], endpoint_factory: list[HttpEndpoint]
) -> None:
    cert, key = certificate
    ca_key, ca_cert = tmp_path / "ca.key", tmp_path / "ca.crt"
    client_key, client_csr, client_cert = (tmp_path / f"client.{x}" for x in ("key", "csr", "crt"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    ca = ("-subj", "/CN=test CA", "-keyout", str(ca_key), "-out", str(ca_cert))
    client = ("-subj", "/CN=prometheus", "-keyout", str(client_key), "-out", str(client_csr))
    sign = ("-in", str(client_csr), "-CA", str(ca_cert), "-CAkey", str(ca_key))
    for argv in (
        ["req", "-x509", *ec, "-days", "2", *ca],
        ["req", "-new", *ec, *client],
        ["x509", "-req", *sign, "-CAcreateserial", "-days", "2", "-out", str(client_cert)],
    ):
        subprocess.run(["openssl", *argv], check=True, capture_output=True, cwd=tmp_path)
    config = write_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca_cert}\n",
    )
    endpoint = serve(load_web_config(config))
    endpoint_factory.append(endpoint)
    anonymous = ssl.create_default_context(cafile=str(cert))
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        fetch(url(endpoint), context=anonymous)
    known = ssl.create_default_context(cafile=str(cert))
    known.load_cert_chain(client_cert, client_key)
    assert fetch(url(endpoint), context=known)[0] == 200


def test_client_auth_without_a_ca_is_refused(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    config = write_config(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n",
    )
    with pytest.raises(UsageError, match=r"web\.yml:4: RequireAndVerifyClientCert needs client"):
        load_web_config(config)


def test_when_every_slot_is_being_answered_newcomers_get_503(
    endpoint_factory: list[HttpEndpoint],
) -> None:
    release = threading.Event()
    metrics = PfwatchMetrics(lambda: MetricsSnapshot(now=0.0, config_digest="d"))

    def slow_status() -> dict[str, object]:
        release.wait(10)
        return {}

    endpoint = HttpEndpoint(
        metrics.registry,
        slow_status,
        lambda: Health(ok=True),
        host="127.0.0.1",
        port=0,
        limits=Limits(max_connections=2, workers=2),
    ).start()
    endpoint_factory.append(endpoint)
    busy = [threading.Thread(target=fetch, args=(url(endpoint, "/status"),)) for _ in range(2)]
    for thread in busy:
        thread.start()
    try:
        deadline = time.monotonic() + 5
        while endpoint.server.stats.accepted < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # both heads read and handed to the workers
        with socket.create_connection(endpoint.address, timeout=5) as sock:
            assert sock.recv(100).startswith(b"HTTP/1.0 503")
        assert endpoint.server.stats.refused == 1
    finally:
        release.set()
        for thread in busy:
            thread.join(10)
    assert fetch(url(endpoint))[0] == 200  # and it recovers


def test_listening_beyond_loopback_without_auth_warns(tmp_path: Path) -> None:
    """Decided without binding a non-loopback address: tests only ever listen on loopback."""
    assert unprotected("127.0.0.1", None) is None
    assert unprotected("::1", None) is None
    assert "beyond loopback" in (unprotected("0.0.0.0", None) or "")
    users = write_config(tmp_path / "web.yml", f"basic_auth_users:\n  p: '{HASH}'\n")
    assert unprotected("0.0.0.0", load_web_config(users)) is None
    empty = write_config(tmp_path / "empty.yml", "http_server_config: {}\n")
    assert unprotected("192.0.2.10", load_web_config(empty)) is not None
