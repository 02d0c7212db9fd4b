"""Postfix's own parameter defaults, for expanding parameters that main.cf does not set.

At runtime we ask the installed Postfix (``postconf -d``; cached per binary); without
one, we use the table shipped in ``pfwatch/knowledge/data/postconf-defaults.json``
(generated from Postfix 3.7.11's ``postconf -d`` by ``scripts/gen_postconf_defaults.py``).
The table also lists the parameters postconf never expands (raw), the legacy names it
still accepts, and the read-only names it drops from main.cf; those come from the
shipped table in both cases.

Inputs: the postconf command (or None to skip it). Outputs: read-only mappings.
Errors: none; an unusable postconf falls back to the shipped table.
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

TABLE = "postconf-defaults.json"
POSTCONF_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class ParameterKnowledge:
    """What postconf knows about parameter names, beyond main.cf."""

    postfix_version: str
    defaults: Mapping[str, str]
    raw: frozenset[str]
    legacy: frozenset[str]
    readonly: frozenset[str]

    def known(self) -> frozenset[str]:
        """Built-in and legacy names (postconf prints these when main.cf sets them)."""
        return frozenset(self.defaults) | self.legacy


def parse_postconf_output(text: str) -> dict[str, str]:
    """``name = value`` lines (``name =`` for empty values) into a dict."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if not sep:
            if not line.endswith(" ="):
                continue
            name, value = line[:-2], ""
        result[name] = value
    return result


@functools.cache
def _shipped() -> dict[str, object]:
    data = resources.files("pfwatch.knowledge").joinpath("data", TABLE).read_text("utf-8")
    loaded: dict[str, object] = json.loads(data)
    return loaded


@functools.cache
def _run_postconf(postconf: str) -> dict[str, str] | None:
    try:
        done = subprocess.run(
            [postconf, "-d"],
            capture_output=True,
            check=False,
            timeout=POSTCONF_TIMEOUT,
            encoding="utf-8",
            errors="surrogateescape",
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    parsed = parse_postconf_output(done.stdout)
    return parsed or None


def shipped_version() -> str:
    """Postfix version the shipped table was generated from."""
    return str(_shipped()["postfix_version"])


def postfix_defaults(postconf: str | None = "postconf") -> Mapping[str, str]:
    """Default value of every built-in parameter: ``postconf -d`` or the shipped table."""
    if postconf is not None:
        live = _run_postconf(postconf)
        if live is not None:
            return MappingProxyType(live)
    shipped = _shipped()["defaults"]
    assert isinstance(shipped, dict)
    return MappingProxyType({str(k): str(v) for k, v in shipped.items()})


def parameter_knowledge(postconf: str | None = "postconf") -> ParameterKnowledge:
    """Defaults plus the raw, legacy and read-only name sets."""
    shipped = _shipped()
    defaults = postfix_defaults(postconf)

    def names(key: str) -> frozenset[str]:
        value = shipped[key]
        assert isinstance(value, list)
        return frozenset(str(item) for item in value)

    version = defaults.get("mail_version", shipped_version())
    return ParameterKnowledge(
        postfix_version=version,
        defaults=defaults,
        raw=names("raw"),
        legacy=names("legacy"),
        readonly=names("readonly"),
    )
