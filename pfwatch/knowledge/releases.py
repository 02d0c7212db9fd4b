"""Which Postfix release a configuration runs, and which knowledge table serves it.

Postfix's facts differ by release (parameters, defaults). pfwatch ships one base table
(Postfix 3.7.11, ``data/postconf-defaults.json``) and, per other release, only what differs
(``data/releases/postconf-defaults-<version>.json``, written by
scripts/gen_postconf_defaults.py). A release is served by the table of its own series
(3.10.x by the 3.10 table); a release without one by the nearest older table, and this is
said once in :attr:`ReleaseChoice.note`.

Where the release comes from, most trusted first (:func:`detect`): the log
(``daemon started -- version X``, src/master/master.c:550), ``postconf -d mail_version``
of a postconf that belongs to the configuration, and the operator's word
(``--postfix-version`` / ``PFWATCH_POSTFIX_VERSION``).

Inputs: version strings. Outputs: :class:`ReleaseChoice`, :class:`Detection`,
:func:`defaults_table`. Errors: none: an unparseable version gives a choice whose note is a
warning (never an exception); a malformed shipped file raises
:class:`pfwatch.errors.InvariantBroken` (a packaging bug).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pfwatch.errors import InvariantBroken

ENV_VAR = "PFWATCH_POSTFIX_VERSION"
BASE_TABLE = "postconf-defaults.json"
_RELEASE_FILE = re.compile(r"postconf-defaults-(\d+\.\d+(?:\.\d+)?)\.json$")
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:[-~+_.][\w.~+-]*)?$")
"""3.10.13, 3.10, 3.10.13-1+deb13u1 (packaging suffix), 3.11-20260821 (a snapshot)."""

SOURCES = ("log", "postconf", "configured")
"""Where a release may come from, most trusted first."""


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of a Postfix version string, or None."""
    found = _VERSION.match(text.strip())
    if found is None:
        return None
    major, minor, patch = found.groups()
    return int(major), int(minor), int(patch or 0)


def _text(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


@cache
def _data_dir() -> Any:
    return resources.files("pfwatch.knowledge").joinpath("data")


@cache
def _base() -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(_data_dir().joinpath(BASE_TABLE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InvariantBroken(f"knowledge data {BASE_TABLE} unusable: {exc}") from exc
    return loaded


@cache
def _deltas() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    folder = _data_dir().joinpath("releases")
    for entry in folder.iterdir() if folder.is_dir() else ():
        named = _RELEASE_FILE.match(entry.name)
        if named is None:
            continue
        try:
            found[named.group(1)] = json.loads(entry.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise InvariantBroken(f"knowledge data {entry.name} unusable: {exc}") from exc
    return found


def base_release() -> str:
    """The release of the base table (3.7.11)."""
    return str(_base()["postfix_version"])


def tables() -> tuple[str, ...]:
    """Releases pfwatch has a table for, oldest first."""
    known = {base_release(), *_deltas()}
    return tuple(sorted(known, key=lambda v: parse_version(v) or (0, 0, 0)))


@dataclass(frozen=True, slots=True)
class ReleaseChoice:
    """The release asked for, the table that serves it and, if they differ, why."""

    requested: str | None
    table: str
    exact: bool
    note: str = ""


def choose(version: str | None) -> ReleaseChoice:
    """The table for ``version`` (None: not known; the base table serves)."""
    base = base_release()
    if version is None:
        return ReleaseChoice(None, base, False, f"Postfix release unknown: using {base} facts")
    parsed = parse_version(version)
    if parsed is None:
        return ReleaseChoice(
            version,
            base,
            False,
            f"warning: cannot parse Postfix version {version!r}: using {base} facts",
        )
    available = [(parse_version(t) or (0, 0, 0), t) for t in tables()]
    for key, table in available:
        if key[:2] == parsed[:2]:
            return ReleaseChoice(version, table, True)
    older = [(key, table) for key, table in available if key[:2] < parsed[:2]]
    if older:
        table = max(older)[1]
        why = "nearest older release"
    else:
        table = min(available)[1]
        why = "older than every release pfwatch knows"
    return ReleaseChoice(
        version,
        table,
        False,
        f"Postfix {_text(parsed)} has no facts of its own: using {table} facts ({why})",
    )


@dataclass(frozen=True, slots=True)
class Detection:
    """The release found and where it came from (one of :data:`SOURCES`, or "")."""

    version: str | None
    source: str

    def describe(self) -> str:
        if self.version is None:
            return "unknown"
        return f"{self.version} (from {self.source})"


def detect(
    *, log: str | None = None, postconf: str | None = None, configured: str | None = None
) -> Detection:
    """The most trusted of the versions at hand: log, then postconf, then configured."""
    for source, version in zip(SOURCES, (log, postconf, configured), strict=True):
        if version:
            return Detection(version.strip(), source)
    return Detection(None, "")


@cache
def defaults_table(table: str) -> dict[str, Any]:
    """The base defaults document with ``table``'s differences applied."""
    base = _base()
    if table == base_release():
        return base
    delta = _deltas().get(table)
    if delta is None:
        raise InvariantBroken(f"no knowledge table for Postfix {table}")
    defaults = dict(base["defaults"])
    for name in delta["removed"]:
        defaults.pop(name, None)
    defaults.update(delta["added"])
    defaults.update(delta["changed"])
    raw = (set(base["raw"]) | set(delta["raw_added"])) - set(delta["raw_removed"])
    return {
        **base,
        "postfix_version": delta["postfix_version"],
        "defaults": dict(sorted(defaults.items())),
        "raw": sorted(raw),
    }


_READERS_FILE = re.compile(r"param-readers-(\d+\.\d+\.\d+)\.json$")


@cache
def _reader_deltas() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    folder = _data_dir().joinpath("releases")
    for entry in folder.iterdir() if folder.is_dir() else ():
        named = _READERS_FILE.match(entry.name)
        if named is not None:
            try:
                found[named.group(1)] = json.loads(entry.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise InvariantBroken(f"knowledge data {entry.name} unusable: {exc}") from exc
    return found


def reader_deltas_newest_first() -> list[tuple[str, dict[str, Any]]]:
    """``(release, delta)`` of every shipped readers delta, the newest release first."""
    deltas = _reader_deltas()
    order = sorted(deltas, key=lambda v: parse_version(v) or (0, 0, 0), reverse=True)
    return [(version, deltas[version]) for version in order]


@cache
def readers(version: str) -> dict[str, dict[str, str]]:
    """``{daemon or "global": {parameter: site}}`` for the release serving ``version``.

    The base readers (data/param_readers.json, 3.7.11) with the differences that
    scripts/gen_release_readers.py found in the source of the release of the same series
    (or the nearest older one); a site added by a release reads ``"<release> file:line"``.
    """
    try:
        base: dict[str, Any] = json.loads(
            _data_dir().joinpath("param_readers.json").read_text("utf-8")
        )
    except (OSError, ValueError) as exc:
        raise InvariantBroken(f"knowledge data param_readers.json unusable: {exc}") from exc
    merged = {"global": dict(base["global"])}
    merged.update({daemon: dict(rows) for daemon, rows in base["daemons"].items()})
    parsed = parse_version(version)
    deltas = sorted(((parse_version(v) or (0, 0, 0), v) for v in _reader_deltas()), reverse=True)
    chosen = next((v for key, v in deltas if parsed and key[:2] <= parsed[:2]), None)
    if chosen is None:
        return merged
    delta = _reader_deltas()[chosen]
    for daemon, names in delta["removed"].items():
        for name in names:
            merged.get(daemon, {}).pop(name, None)
    for daemon, rows in delta["added"].items():
        target = merged.setdefault(daemon, {})
        for name, site in rows.items():
            target[name] = f"{chosen} {site}"
    return merged


@dataclass(slots=True)
class ReleaseTrack:
    """The releases a log shows (``daemon started`` / ``reload -- version X``), in order.

    Feed it every master start or reload; :meth:`summary` tells which release the log
    ran (the newest seen), the table that serves it, and each upgrade (or downgrade)
    between two master lines, as a JSON-ready dict.
    """

    seen: list[tuple[str, float]]

    def __init__(self) -> None:
        self.seen = []

    def observe(self, version: str, at: float) -> None:
        if not self.seen or self.seen[-1][0] != version:
            self.seen.append((version, at))

    def release_at(self, at: float) -> str | None:
        """The release whose master ran at ``at`` (the last start or reload before it);
        before the first one, the first one seen."""
        running = self.seen[0][0] if self.seen else None
        for version, since in self.seen:
            if since <= at:
                running = version
        return running

    def summary(
        self, *, postconf: str | None = None, configured: str | None = None
    ) -> dict[str, Any]:
        logged = self.seen[-1][0] if self.seen else None
        found = detect(log=logged, postconf=postconf, configured=configured)
        choice = choose(found.version)
        return {
            "version": found.version,
            "source": found.source,
            "table": choice.table,
            "exact": choice.exact,
            "note": choice.note,
            "upgrades": [
                {"from": old, "to": new, "at": at}
                for (old, _), (new, at) in zip(self.seen, self.seen[1:], strict=False)
            ],
        }


def describe(summary: dict[str, Any]) -> str:
    """One line for a text output: ``Postfix 3.10.13 (from log)`` and any note or upgrade."""
    if summary["version"] is None:
        return str(summary["note"])
    line = f"Postfix {summary['version']} (from {summary['source']})"
    changes = "; ".join(f"upgraded {u['from']} -> {u['to']}" for u in summary["upgrades"])
    notes = [text for text in (changes, summary["note"]) if text]
    return line + (": " + "; ".join(notes) if notes else "")


def postconf_version(postconf: str | None = "postconf", timeout: float = 10.0) -> str | None:
    """``postconf -dh mail_version`` of the given postconf, or None when none answers."""
    if postconf is None:
        return None
    try:
        done = subprocess.run(
            [postconf, "-dh", "mail_version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = done.stdout.strip()
    return version if done.returncode == 0 and version else None


def startup_summary(postconf: str | None = "postconf") -> dict[str, Any]:
    """The release known before any log line: postconf's, else ``PFWATCH_POSTFIX_VERSION``."""
    return ReleaseTrack().summary(
        postconf=postconf_version(postconf), configured=os.environ.get(ENV_VAR)
    )
