"""Settings of ``pfwatch watch`` and ``pfwatch check``, from four layers.

Precedence, highest first: command-line flags, environment variables ``PFWATCH_*``, an
optional TOML file, defaults. Inputs: the flags click parsed (None = not given), the
environment, the file system (for the TOML file and maillog auto-detection). Outputs: a
frozen :class:`Settings` plus, for each field, which layer set it (``origins``).
Errors: :class:`pfwatch.errors.UsageError` naming the flag, variable or ``file:key`` whose
value is unusable.

| setting    | flag          | environment          | TOML key   | default                      |
|------------|---------------|----------------------|------------|------------------------------|
| config_dir | --config-dir  | PFWATCH_CONFIG_DIR   | config_dir | $MAIL_CONFIG or /etc/postfix |
| maillog    | --maillog     | PFWATCH_MAILLOG      | maillog    | first of MAILLOG_CANDIDATES  |
| journal    | --journal     | PFWATCH_JOURNAL      | journal    | true when no maillog exists  |
| state_dir  | --state-dir   | PFWATCH_STATE_DIR    | state_dir  | $STATE_DIRECTORY (systemd)   |
|            |               |                      |            | or /var/lib/pfwatch          |
| listen     | --listen      | PFWATCH_LISTEN       | listen     | 127.0.0.1:29125              |
| debounce   | --debounce    | PFWATCH_DEBOUNCE     | debounce   | 0.3 (seconds)                |
| log_format | --log-format  | PFWATCH_LOG_FORMAT   | log_format | auto                         |

The TOML file is ``--settings FILE`` or ``PFWATCH_SETTINGS``; else
``/etc/pfwatch/pfwatch.toml`` when it exists. A maillog given explicitly (by any layer)
wins over ``journal`` from a lower layer; giving both in the same layer is an error.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfwatch.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 29125
"""Where ``pfwatch watch`` serves /metrics, /status and /healthz unless told otherwise."""

DEFAULT_SETTINGS_FILE = Path("/etc/pfwatch/pfwatch.toml")
MAILLOG_CANDIDATES: tuple[str, ...] = (
    "/var/log/mail.log",  # Debian/Ubuntu rsyslog (rsyslog.conf mail.* rule)
    "/var/log/maillog",  # RHEL/Fedora/FreeBSD syslog
    "/var/log/mail/mail.log",  # some container images and Alpine setups
)
LOG_FORMATS = ("auto", "json", "console")
KEYS = ("config_dir", "maillog", "journal", "state_dir", "listen", "debounce", "log_format")


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings. ``maillog`` is None exactly when ``journal`` is True."""

    config_dir: Path
    maillog: Path | None
    journal: bool
    state_dir: Path
    listen_host: str
    listen_port: int
    debounce: float
    log_format: str
    settings_file: Path | None = None
    origins: Mapping[str, str] = field(default_factory=dict)

    @property
    def listen(self) -> str:
        """``host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    settings_file: Path | str | None = None,
    exists: Callable[[Path], bool] = Path.exists,
) -> Settings:
    """Resolve the settings (see the module docstring for the layers)."""
    env = dict(os.environ if environ is None else environ)
    given = {key: value for key, value in (flags or {}).items() if value is not None}
    layers: list[tuple[str, dict[str, Any]]] = [("flag", given), ("env", _from_env(env))]

    chosen_file = settings_file or env.get("PFWATCH_SETTINGS")
    path = Path(chosen_file) if chosen_file else None
    if path is None and exists(DEFAULT_SETTINGS_FILE):
        path = DEFAULT_SETTINGS_FILE
    if path is not None:
        layers.append((str(path), _from_toml(path)))

    for origin, values in layers:
        if values.get("maillog") and values.get("journal") is True:
            raise UsageError(
                f"{_where(origin, 'maillog')}: choose a maillog or the journal, not both"
            )

    resolved: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key in KEYS:
        for origin, values in layers:
            if key in values and values[key] is not None:
                resolved[key] = _parse(key, values[key], origin)
                origins[key] = origin
                break

    config_dir = resolved.get("config_dir") or Path(env.get("MAIL_CONFIG") or "/etc/postfix")
    origins.setdefault("config_dir", "env:MAIL_CONFIG" if env.get("MAIL_CONFIG") else "default")
    state_dir = resolved.get("state_dir") or Path(
        env.get("STATE_DIRECTORY", "").split(":")[0] or "/var/lib/pfwatch"
    )
    origins.setdefault("state_dir", "default")
    maillog, journal = _choose_log(resolved, origins, exists)
    host, port = resolved.get("listen") or (DEFAULT_HOST, DEFAULT_PORT)
    origins.setdefault("listen", "default")
    debounce = resolved.get("debounce", 0.3)
    origins.setdefault("debounce", "default")
    log_format = resolved.get("log_format", "auto")
    origins.setdefault("log_format", "default")
    return Settings(
        config_dir=config_dir,
        maillog=maillog,
        journal=journal,
        state_dir=state_dir,
        listen_host=host,
        listen_port=port,
        debounce=debounce,
        log_format=log_format,
        settings_file=path,
        origins=origins,
    )


def parse_listen(text: str, where: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (host 127.0.0.1) → (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise UsageError(f"{where}: {text!r} is not HOST:PORT")
    port = int(port_text)
    if not 0 < port < 65536:
        raise UsageError(f"{where}: port {port} is out of range 1-65535")
    host = host.strip("[]") or DEFAULT_HOST
    return host, port


def _choose_log(
    resolved: Mapping[str, Any], origins: dict[str, str], exists: Callable[[Path], bool]
) -> tuple[Path | None, bool]:
    maillog: Path | None = resolved.get("maillog")
    journal: bool | None = resolved.get("journal")
    if maillog is not None and journal is True:
        if _rank(origins["maillog"]) < _rank(origins["journal"]):
            return maillog, False
        return None, True
    if maillog is not None:
        return maillog, False
    if journal is True:
        return None, True
    for candidate in MAILLOG_CANDIDATES:
        if exists(Path(candidate)):
            origins["maillog"] = "auto-detected"
            return Path(candidate), False
    if journal is False:
        raise UsageError(
            f"{_where(origins['journal'], 'journal')} is false but no maillog was given or found"
            f" ({', '.join(MAILLOG_CANDIDATES)}); give --maillog FILE"
        )
    origins["journal"] = "auto-detected (no maillog found)"
    return None, True


def _rank(origin: str) -> int:
    return {"flag": 0, "env": 1}.get(origin, 2)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        key: env[f"PFWATCH_{key.upper()}"]
        for key in KEYS
        if env.get(f"PFWATCH_{key.upper()}", "") != ""
    }


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read settings file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise UsageError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(KEYS)}"
        )
    return data


def _where(origin: str, key: str) -> str:
    if origin == "flag":
        return f"--{key.replace('_', '-')}"
    if origin == "env":
        return f"PFWATCH_{key.upper()}"
    return f"{origin}: {key}"


def _parse(key: str, value: Any, origin: str) -> Any:
    where = _where(origin, key)
    if key in {"config_dir", "maillog", "state_dir"}:
        if not isinstance(value, str | os.PathLike) or str(value) == "":
            raise UsageError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    if key == "journal":
        return _boolean(value, where)
    if key == "listen":
        if not isinstance(value, str):
            raise UsageError(f"{where}: expected HOST:PORT, got {value!r}")
        return parse_listen(value, where)
    if key == "debounce":
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: expected seconds, got {value!r}") from None
        if not 0.0 <= seconds <= 60.0:
            raise UsageError(f"{where}: {seconds} is outside 0-60 seconds")
        return seconds
    if value not in LOG_FORMATS:
        raise UsageError(f"{where}: expected one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return value


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise UsageError(f"{where}: expected true or false, got {value!r}")
