"""Which daemon reads which main.cf parameter, and which parameters need an action.

Inputs: ``knowledge/data/param_readers.json`` (generated from the Postfix 3.7.11 source by
scripts/gen_param_readers.py), plus the parameters later releases added, with their readers
(``data/releases/param-readers-*.json``, scripts/gen_release_readers.py). Outputs:
:func:`readers`, :func:`reads`,
:data:`STOP_START`, :data:`MASTER_RELOAD`, :func:`reference_names`,
:class:`ReferenceGraph`, :func:`affected_parameters`. Errors:
:class:`pfwatch.errors.InvariantBroken` when the shipped data file is missing or
malformed (a packaging bug).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pfwatch.errors import InvariantBroken
from pfwatch.knowledge import releases
from pfwatch.knowledge.daemons import ALIASES

GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class ActionRule:
    """A parameter whose change needs an action, with the reason and its citation."""

    parameter: str
    action: str
    why: str
    source: str


_STOP_START_ROWS = (
    ActionRule(
        "inet_interfaces",
        "restart",
        "master keeps its listeners",
        "src/master/master_ent.c:288-301,349-355; proto/postconf.proto:2001",
    ),
    ActionRule(
        "inet_protocols",
        "restart",
        "master ignores the change on reload",
        "src/master/master_watch.c:88-94; src/master/master_vars.c:76",
    ),
    ActionRule(
        "queue_directory",
        "restart",
        "watched by master, ignored on reload",
        "src/master/master_vars.c:74-75",
    ),
    ActionRule(
        "config_directory",
        "restart",
        "watched by master, ignored on reload",
        "src/master/master_vars.c:74-75",
    ),
    ActionRule(
        "import_environment",
        "restart",
        "applied by master only at start",
        "src/master/master.c:473-479",
    ),
)
_MASTER_RELOAD_ROWS = (
    ActionRule(
        "master_service_disable", "reload", "read only by master", "src/master/master_vars.c:62-69"
    ),
    ActionRule(
        "service_throttle_time", "reload", "read only by master", "src/master/master_vars.c:62-69"
    ),
    ActionRule(
        "default_process_limit",
        "reload",
        "master's default process limit",
        "src/master/master_ent.c:516-517",
    ),
    ActionRule(
        "daemon_directory", "reload", "master builds command paths", "src/master/master_ent.c:523"
    ),
    ActionRule(
        "compatibility_level",
        "reload",
        "master's chroot default",
        "src/master/master_ent.c:494-496",
    ),
)
STOP_START: dict[str, ActionRule] = {r.parameter: r for r in _STOP_START_ROWS}
MASTER_RELOAD: dict[str, ActionRule] = {r.parameter: r for r in _MASTER_RELOAD_ROWS}

MASTER_CF_RELOAD = ActionRule(
    "master.cf",
    "reload",
    "master.cf is read only by master, at start and on reload",
    "src/master/master.c:102-104",
)


@cache
def _data() -> dict[str, Any]:
    try:
        text = resources.files("pfwatch.knowledge").joinpath("data/param_readers.json")
        loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvariantBroken(f"knowledge data param_readers.json unusable: {exc}") from exc
    _add_newer_parameters(loaded)
    return loaded


def _add_newer_parameters(loaded: dict[str, Any]) -> None:
    """Parameters the base release does not have, with the readers of the newest release
    that has them (cited ``"<release> file:line"``). An older Postfix never reads such a
    name (its postconf calls it unused, and so does the release's defaults table), so the
    union serves every release; readers of names the base has stay the base's."""
    known = set(loaded["global"]).union(*map(set, loaded["daemons"].values()))
    for version, delta in releases.reader_deltas_newest_first():
        for daemon, rows in delta["added"].items():
            target = (
                loaded["global"] if daemon == GLOBAL else loaded["daemons"].setdefault(daemon, {})
            )
            for name, site in rows.items():
                if name not in known:
                    target.setdefault(name, f"{version} {site}")


@cache
def _reverse() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for daemon, params in _data()["daemons"].items():
        for param in params:
            table.setdefault(param, set()).add(daemon)
    for param in _data()["global"]:
        table.setdefault(param, set()).add(GLOBAL)
    return {p: frozenset(d) for p, d in table.items()}


def is_global(parameter: str) -> bool:
    """True when every Postfix program reads the parameter (mail_params_init)."""
    return parameter in _data()["global"]


def readers(parameter: str) -> frozenset[str]:
    """Daemons whose own tables read ``parameter``; contains "global" for globals."""
    return _reverse().get(parameter, frozenset())


def reads(daemon: str, parameter: str) -> bool:
    """Whether ``daemon`` reads ``parameter`` at start (own list or global list)."""
    name = ALIASES.get(daemon, daemon)
    if is_global(parameter):
        return True
    if parameter in _data()["daemons"].get(name, {}):
        return True
    return _dynamic_match(name, parameter)


def own_reads(daemon: str, parameter: str) -> bool:
    """Whether ``parameter`` is in the daemon's own list (not only the global one)."""
    name = ALIASES.get(daemon, daemon)
    return parameter in _data()["daemons"].get(name, {}) or _dynamic_match(name, parameter)


def _dynamic_match(daemon: str, parameter: str) -> bool:
    for pattern in _data()["dynamic"].get(daemon, {}):
        suffix = pattern.split(">", 1)[1] if ">" in pattern else pattern
        if parameter.endswith(suffix) and parameter != suffix.lstrip("_"):
            return True
    return False


@cache
def _release_sensitive() -> frozenset[str]:
    """Parameters whose readers differ between the releases pfwatch knows (added or
    removed by some release's readers delta); every other one is read alike by all."""
    names: set[str] = set()
    for _version, delta in releases.reader_deltas_newest_first():
        for key in ("added", "removed"):
            for rows in delta[key].values():
                names.update(rows)
    return frozenset(names)


def release_lacks(version: str, daemon: str, parameter: str) -> bool:
    """True when a ``daemon`` of Postfix ``version`` does not read ``parameter`` although a
    release pfwatch knows does (a name a later release added, or one an earlier release
    had): such a process is not held back by an edit of it. False when the release reads
    it, or when pfwatch cannot tell (an unknown name, a name read by pattern)."""
    if parameter not in _release_sensitive() or parameter not in _reverse():
        return False  # every release reads it alike: no need for a release's table
    table = releases.readers(version)
    name = ALIASES.get(daemon, daemon)
    return parameter not in table["global"] and parameter not in table.get(name, {})


def where_read(daemon: str, parameter: str) -> str:
    """The source location where ``daemon`` reads ``parameter`` ("" when unknown)."""
    name = ALIASES.get(daemon, daemon)
    own: str = _data()["daemons"].get(name, {}).get(parameter, "")
    if own:
        return own
    glob: str = _data()["global"].get(parameter, "")
    return glob


def header() -> Mapping[str, str]:
    """The provenance header of the shipped data (Postfix version, generator)."""
    head: Mapping[str, str] = _data()["_header"]
    return head


_REF = re.compile(r"\$(?:\{|\()?([A-Za-z0-9_]+)")


def reference_names(value: str) -> set[str]:
    """Parameter names referenced by ``$name``, ``${name...}`` or ``$(name)`` in a value."""
    if "$" not in value:  # most (expanded) values: skip the regex scan
        return set()
    return set(_REF.findall(value))


def _add_referrers(referrers: dict[str, set[str]], name: str, value: str) -> None:
    for ref in reference_names(value):
        referrers.setdefault(ref, set()).add(name)


@dataclass(frozen=True, slots=True)
class ReferenceGraph:
    """Who refers to whom through ``$`` in parameter maps (old and new snapshot).

    Build it once per change with :meth:`of`, then ask :meth:`affected` per service:
    a service's master.cf ``-o`` overrides only filter and extend the shared graph, so
    the ~1700 values are scanned once instead of once per service and table edit.
    """

    referrers: Mapping[str, frozenset[str]]
    """Referenced name -> names whose value (in any of the maps) references it."""

    @classmethod
    def of(cls, values: Iterable[Mapping[str, str]]) -> ReferenceGraph:
        """The graph of the ``$`` references in ``values``."""
        referrers: dict[str, set[str]] = {}
        for mapping in values:
            for name, value in mapping.items():
                _add_referrers(referrers, name, value)
        return cls({ref: frozenset(names) for ref, names in referrers.items()})

    def affected(
        self, changed: Iterable[str], overrides: Mapping[str, str] | None = None
    ) -> set[str]:
        """The changed parameters plus every parameter whose value reaches one through ``$``.

        ``overrides`` are a service's master.cf ``-o`` values: an override of P shields
        the service from a main.cf edit of P and P's main.cf value no longer refers to
        anything, but the override's own ``$`` references count (mail_conf_str.c:124
        expands ``-o`` values in the child, single_server.c:529-546).
        """
        overrides = overrides or {}
        own: dict[str, set[str]] = {}
        for name, value in overrides.items():
            _add_referrers(own, name, value)
        result = {p for p in changed if p not in overrides}
        todo = list(result)
        while todo:
            current = todo.pop()
            for parent in self.referrers.get(current, ()):
                if parent not in overrides and parent not in result:
                    result.add(parent)
                    todo.append(parent)
            for parent in own.get(current, ()):
                if parent not in result:
                    result.add(parent)
                    todo.append(parent)
        return result


def affected_parameters(
    changed: Iterable[str],
    values: Iterable[Mapping[str, str]],
    overrides: Mapping[str, str] | None = None,
) -> set[str]:
    """The changed parameters plus every parameter whose value reaches one through ``$``.

    ``values`` are parameter maps (old and new snapshot) whose references are followed;
    see :meth:`ReferenceGraph.affected` for ``overrides``. Scans every value: when asking
    for many services of one change, build one :class:`ReferenceGraph` instead.
    """
    return ReferenceGraph.of(values).affected(changed, overrides)
