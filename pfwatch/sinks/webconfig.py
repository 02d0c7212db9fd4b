"""The ``--web-config`` file of ``pfwatch watch``: TLS and basic auth for the endpoint.

The format is the Prometheus exporter toolkit's web configuration (the file node_exporter,
postfix_exporter and others take with ``--web.config.file``), so one file and one set of
habits serve the whole fleet::

    tls_server_config:
      cert_file: /etc/pfwatch/tls.crt     # or `cert:` with the PEM inline
      key_file: /etc/pfwatch/tls.key      # or `key:` with the PEM inline
      client_auth_type: NoClientCert      # … RequireAndVerifyClientCert
      client_ca_file: /etc/pfwatch/ca.crt
      min_version: TLS12                  # TLS10 … TLS13
      max_version: TLS13
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}
    basic_auth_users:
      prometheus: $2y$10$…                # bcrypt hash (htpasswd -B, or the bcrypt module)

Keys the toolkit knows that pfwatch does not implement (``cipher_suites``,
``curve_preferences``, ``prefer_server_cipher_suites``, ``http2``) and unknown keys are
errors, as the toolkit's strict parsing makes them.

Inputs: the file's path. Outputs: a frozen :class:`WebConfig` with a ready
``ssl.SSLContext`` (or None) and an :class:`BasicAuth` checker (or None). Errors:
:class:`pfwatch.errors.UsageError` naming the file and line: missing or unreadable file,
malformed YAML, a wrong key or value, a certificate or key that does not load, a
bcrypt hash that is not one, or a private key (inline, or ``key_file``) that any local
user can read. Nothing is half-applied: the service does not start.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
import stat
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from pfwatch.errors import UsageError

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_TLS_KEYS = {"cert_file", "key_file", "cert", "key", "client_auth_type", "client_ca_file"}
_TLS_KEYS |= {"min_version", "max_version"}
_UNSUPPORTED = {"cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "http2"}
_CACHE_LIMIT = 256


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A loaded web configuration: what the endpoint serves with."""

    path: Path | None = None
    """The file it came from; None for the default (plain HTTP, no auth)."""
    ssl_context: ssl.SSLContext | None = None
    auth: BasicAuth | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class BasicAuth:
    """Checks ``Authorization: Basic`` credentials against bcrypt hashes.

    bcrypt is slow on purpose (tens of milliseconds per check), so a successful check is
    remembered by a keyed digest of user and password, as the exporter toolkit does; an
    unknown user still costs one bcrypt check so timing does not reveal which users exist.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._key = os.urandom(32)
        self._good: set[bytes] = set()
        self._lock = threading.Lock()
        self._dummy = bcrypt.hashpw(b"pfwatch", bcrypt.gensalt(rounds=10))

    def check(self, user: str, password: str) -> bool:
        """True when the user exists and the password matches its hash."""
        digest = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if digest in self._good:
                return True
        hashed = self._users.get(user)
        ok = bcrypt.checkpw(password.encode(), hashed or self._dummy) and hashed is not None
        if ok:
            with self._lock:
                if len(self._good) >= _CACHE_LIMIT:
                    self._good.clear()
                self._good.add(digest)
        return ok


def load_web_config(path: Path) -> WebConfig:
    """Read, check and load ``path`` (see the module docstring)."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"{path}: web config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read web config: {exc}") from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(f"{where}: malformed YAML: {problem}") from None
    reader = _Reader(path)
    if root is None:
        return WebConfig(path=path)
    top = reader.mapping(root, {"tls_server_config", "http_server_config", "basic_auth_users"})
    ssl_context = None
    if "tls_server_config" in top:
        key_node, tls_node = top["tls_server_config"]
        tls = reader.mapping(tls_node, _TLS_KEYS)
        if "key" in tls and mode & stat.S_IROTH:
            raise UsageError(
                f"{reader.at(tls['key'][0])}: the file holds a private key and any local user "
                f"can read it; chmod o-r {path}"
            )
        ssl_context = _ssl_context(reader, key_node, tls)
    auth = None
    if "basic_auth_users" in top:
        users = reader.mapping(top["basic_auth_users"][1], None)
        hashes: dict[str, bytes] = {}
        for user, (user_node, hash_node) in users.items():
            hashed = reader.scalar(hash_node).encode()
            try:
                bcrypt.checkpw(b"", hashed)
            except ValueError:
                raise UsageError(
                    f"{reader.at(user_node)}: basic_auth_users: the password of {user!r} is "
                    "not a bcrypt hash ($2a$, $2b$ or $2y$)"
                ) from None
            hashes[user] = hashed
        auth = BasicAuth(hashes) if hashes else None
    headers: dict[str, str] = {}
    if "http_server_config" in top:
        server = reader.mapping(top["http_server_config"][1], {"headers"})
        if "headers" in server:
            for name, (_, value) in reader.mapping(server["headers"][1], None).items():
                headers[name] = reader.scalar(value)
    return WebConfig(path=path, ssl_context=ssl_context, auth=auth, headers=headers)


class _Reader:
    """Walks composed YAML nodes, raising errors with the file and line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def at(self, node: Node) -> str:
        return f"{self.path}:{node.start_mark.line + 1}"

    def mapping(self, node: Node, allowed: set[str] | None) -> dict[str, tuple[Node, Node]]:
        if isinstance(node, ScalarNode) and node.value in ("", "~", "null"):
            return {}
        if not isinstance(node, MappingNode):
            raise UsageError(f"{self.at(node)}: expected a mapping of keys to values")
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if allowed is not None and key not in allowed:
                if key in _UNSUPPORTED:
                    raise UsageError(f"{self.at(key_node)}: {key} is not supported by pfwatch")
                known = ", ".join(sorted(allowed))
                raise UsageError(f"{self.at(key_node)}: unknown key {key!r} (known: {known})")
            if key in out:
                raise UsageError(f"{self.at(key_node)}: duplicate key {key!r}")
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise UsageError(f"{self.at(node)}: expected a single value")
        return str(node.value)

    def file(self, node: Node, base: Path) -> Path:
        path = Path(self.scalar(node))
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise UsageError(f"{self.at(node)}: {path}: no such file")
        return path


def _ssl_context(
    reader: _Reader, section: Node, tls: Mapping[str, tuple[Node, Node]]
) -> ssl.SSLContext:
    base = reader.path.parent
    for inline, filed in (("cert", "cert_file"), ("key", "key_file")):
        if inline in tls and filed in tls:
            raise UsageError(f"{reader.at(tls[inline][0])}: give {inline} or {filed}, not both")
        if inline not in tls and filed not in tls:
            raise UsageError(f"{reader.at(section)}: tls_server_config needs {filed}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if "key_file" in tls:
        key_path = reader.file(tls["key_file"][1], base)
        if key_path.stat().st_mode & stat.S_IROTH:
            raise UsageError(
                f"{reader.at(tls['key_file'][1])}: key_file {key_path} can be read by any "
                f"local user; chmod o-r {key_path}"
            )
    with tempfile.TemporaryDirectory(prefix="pfwatch-tls-") as scratch:
        cert_path = _material(reader, tls, "cert", Path(scratch))
        key_path = _material(reader, tls, "key", Path(scratch))
        try:
            context.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, OSError) as exc:
            node = tls.get("cert_file", tls.get("cert"))
            assert node is not None
            raise UsageError(
                f"{reader.at(node[0])}: certificate and key do not load: {exc}"
            ) from None
    if "client_auth_type" in tls:
        name = reader.scalar(tls["client_auth_type"][1])
        if name not in _CLIENT_AUTH:
            raise UsageError(
                f"{reader.at(tls['client_auth_type'][1])}: client_auth_type {name!r} is not one "
                f"of {', '.join(_CLIENT_AUTH)}"
            )
        context.verify_mode = _CLIENT_AUTH[name]
        # Python's ssl verifies every client certificate it asks for, so each mode but
        # NoClientCert needs the CA to verify against.
        if name != "NoClientCert" and "client_ca_file" not in tls:
            raise UsageError(
                f"{reader.at(tls['client_auth_type'][1])}: {name} needs client_ca_file"
            )
    if "client_ca_file" in tls:
        ca = reader.file(tls["client_ca_file"][1], base)
        try:
            context.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError) as exc:
            raise UsageError(f"{reader.at(tls['client_ca_file'][1])}: {exc}") from None
    for key, attr in (("min_version", "minimum_version"), ("max_version", "maximum_version")):
        if key in tls:
            version = reader.scalar(tls[key][1])
            if version not in _TLS_VERSIONS:
                raise UsageError(
                    f"{reader.at(tls[key][1])}: {key} {version!r} is not one of "
                    f"{', '.join(_TLS_VERSIONS)}"
                )
            setattr(context, attr, _TLS_VERSIONS[version])
    return context


def _material(
    reader: _Reader, tls: Mapping[str, tuple[Node, Node]], kind: str, scratch: Path
) -> Path:
    """The file of the certificate or key: as named, or the inline PEM in a private file."""
    if f"{kind}_file" in tls:
        return reader.file(tls[f"{kind}_file"][1], reader.path.parent)
    path = scratch / f"{kind}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(reader.scalar(tls[kind][1]))
    return path
