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
import os
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from pfwatch.knowledge import releases

TABLE = "postconf-defaults.json"
#: DEF_MYDOMAIN (src/global/mail_params.h:171).
DEFAULT_MYDOMAIN = "localdomain"
POSTCONF_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class ParameterKnowledge:
    """What postconf knows about parameter names, beyond main.cf."""

    postfix_version: str
    defaults: Mapping[str, str]
    raw: frozenset[str]
    legacy: frozenset[str]
    readonly: frozenset[str]
    #: (suffix, parameter whose value is the default) per master.cf command name.
    service_parameters: Mapping[str, tuple[tuple[str, str], ...]]
    #: Legacy "type:name" client parameter suffixes per table type (name_suffix).
    dbms_suffixes: Mapping[str, tuple[str, ...]]
    #: The postconf command the defaults came from (None: the shipped table).
    postconf: str | None = None

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


def _postconf(postconf: str, directory: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``postconf -c DIRECTORY ARGS``, its output as text (raises OSError or
    SubprocessError when it cannot run or exceeds POSTCONF_TIMEOUT)."""
    return subprocess.run(
        [postconf, "-c", directory, *args],
        capture_output=True,
        check=False,
        timeout=POSTCONF_TIMEOUT,
        encoding="utf-8",
        errors="surrogateescape",
    )


@functools.cache
def _run_postconf(postconf: str) -> dict[str, str] | None:
    # An empty configuration directory keeps the host's master.cf services (and their
    # service-specific parameters) out of the built-in defaults.
    try:
        with tempfile.TemporaryDirectory(prefix="pfwatch-postconf-") as empty:
            done = _postconf(postconf, empty, "-d")
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    parsed = parse_postconf_output(done.stdout)
    return parsed or None


def postconf_mail_version(postconf: str | None = "postconf") -> str | None:
    """``mail_version`` of ``postconf -d`` (run once per process, with the defaults), or
    None when no postconf answers."""
    if postconf is None:
        return None
    found = _run_postconf(postconf)
    return found.get("mail_version") or None if found is not None else None


#: Inputs of the mynetworks default (pcf_mynetworks(), postconf_builtin.c:252-290):
#: inet_interfaces, mynetworks_style (whose default depends on compatibility_level) and
#: inet_protocols.
MYNETWORKS_INPUTS = ("inet_interfaces", "mynetworks_style", "inet_protocols", "compatibility_level")


@functools.cache
def _postconf_mynetworks(
    postconf: str, settings: tuple[tuple[str, str], ...]
) -> tuple[str | None, str | None]:
    try:
        with tempfile.TemporaryDirectory(prefix="pfwatch-postconf-") as tmp:
            text = "".join(f"{name} = {value}\n" for name, value in settings)
            main_cf = Path(tmp) / "main.cf"
            main_cf.write_bytes(text.encode("utf-8", "surrogateescape"))
            # postconf sleeps while main.cf is younger than a second or two.
            os.utime(main_cf, (0, 0))
            done = _postconf(postconf, tmp, "-h", "mynetworks")
    except (OSError, subprocess.SubprocessError):
        return None, None
    if done.returncode != 0:
        # The last warning usually says why; drop the ones about our scratch directory.
        lines = [x for x in done.stderr.splitlines() if tmp not in x]
        return None, "; ".join(x.split(": ", 2)[-1] for x in lines[-2:]) or "postconf failed"
    return done.stdout.rstrip("\n"), None


class DefaultUnavailable(Exception):
    """Postfix itself cannot compute a default from these settings (it stops)."""


def mynetworks_default(settings: Mapping[str, str], postconf: str | None = "postconf") -> str:
    """The value Postfix computes for an unset mynetworks, given main.cf ``settings``.

    It depends on the host's interfaces (src/global/mynetworks.c:91-290), so we ask the
    installed postconf with only the settings it depends on; mynetworks() ends every
    entry with a blank (mynetworks.c:198, 258), which postconf's printing hides, so we put
    it back. Without postconf: the shipped value (for the machine that generated it).
    Raises :class:`DefaultUnavailable` when postconf stops on these settings.
    """
    computed = None
    if postconf is not None:
        computed, error = _postconf_mynetworks(postconf, tuple(sorted(settings.items())))
        if error is not None:
            raise DefaultUnavailable(error)
    if computed is None:
        shipped = _shipped()["mynetworks"]
        computed = str(shipped)
    return computed + " " if computed else ""


def hostname_default(mydomain: str | None) -> str:
    """pcf_check_myhostname() (postconf_builtin.c:191-213): gethostname(), plus
    ``.$mydomain`` (or ``.localdomain``) when it has no dot."""
    name = socket.gethostname()
    if "." not in name:
        name = f"{name}.{mydomain if mydomain is not None else DEFAULT_MYDOMAIN}"
    return name


def domain_default(myhostname: str) -> str:
    """pcf_check_mydomainname() (postconf_builtin.c:229-248): what follows the first dot
    of myhostname, or ``localdomain``."""
    _, dot, rest = myhostname.partition(".")
    return rest if dot else DEFAULT_MYDOMAIN


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


def parameter_knowledge(
    postconf: str | None = "postconf", release: str | None = None
) -> ParameterKnowledge:
    """Defaults plus the raw, legacy and read-only name sets.

    ``release`` (a Postfix version) picks the shipped table of that release (or the nearest
    older one, :func:`pfwatch.knowledge.releases.choose`) for when no postconf answers.
    """
    shipped = _shipped()
    if release is not None:
        shipped = releases.defaults_table(releases.choose(release).table)
    live = postconf if postconf is not None and _run_postconf(postconf) is not None else None
    if live is not None or release is None:
        defaults = postfix_defaults(postconf)
    else:
        table = shipped["defaults"]
        assert isinstance(table, dict)
        defaults = MappingProxyType({str(k): str(v) for k, v in table.items()})

    def names(key: str) -> frozenset[str]:
        value = shipped[key]
        assert isinstance(value, list)
        return frozenset(str(item) for item in value)

    rows = shipped["service_suffixes"]
    programs = shipped["service_programs"]
    dbms = shipped["dbms_suffixes"]
    assert isinstance(rows, list) and isinstance(programs, dict) and isinstance(dbms, dict)
    pairs = tuple((str(row[0]), str(row[1])) for row in rows)
    groups = {"pipe": pairs, "delivery": pairs[1:], "spawn": pairs[:1]}
    version = defaults.get("mail_version", shipped_version())
    return ParameterKnowledge(
        postfix_version=version,
        defaults=defaults,
        raw=names("raw"),
        legacy=names("legacy"),
        readonly=names("readonly"),
        service_parameters={str(p): groups[str(g)] for p, g in programs.items()},
        dbms_suffixes={str(t): tuple(map(str, v)) for t, v in dbms.items()},
        postconf=live,
    )
