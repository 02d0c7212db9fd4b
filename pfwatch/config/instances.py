"""The Postfix instances of a host: the primary and those ``postmulti`` manages.

A multi-instance host lists its other configuration directories in the primary main.cf's
``multi_instance_directories`` (read by every program, src/global/mail_params.c:724;
postconf(5): "a list of non-default Postfix configuration directories ... started,
stopped, etc., together with the default Postfix instance", separated by comma or
whitespace). Each instance has its
own main.cf, master.cf, queue and ``syslog_name``, whose default is
``${multi_instance_name?{$multi_instance_name}:{postfix}}`` (the shipped defaults table;
postconf(5) "multi_instance_name": "this name becomes also the default value for the
syslog_name parameter"). Log lines say which instance wrote them by their program prefix
(``postfix-out/smtpd``), the first component of the syslog name of the process; a
master.cf service may set its own with ``-o syslog_name=...``.

Inputs: a primary configuration directory, or several directories the operator names.
Outputs: :class:`InstanceSpec` per instance (primary first), :class:`Router` (a log
event's instance by its program prefix). Errors: :class:`~pfwatch.errors.SourceUnavailable`
when a listed directory has no readable main.cf, :class:`~pfwatch.errors.ConfigSyntaxError`
(file:line) when a main.cf or master.cf does not parse, :class:`~pfwatch.errors.UsageError`
when two instances share a syslog name (their log lines could not be told apart).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pfwatch.config.expand import Expander
from pfwatch.config.maincf import load_main_cf
from pfwatch.config.mastercf import load_master_cf
from pfwatch.config.services import effective_overrides, expander_for
from pfwatch.errors import SourceUnavailable, UsageError
from pfwatch.events import LogEvent
from pfwatch.knowledge import releases

_LIST = re.compile(r"[\s,]+")
"""Postfix's list separators (comma or whitespace; postconf(5) multi_instance_directories)."""


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """One Postfix instance: its label, directories and the syslog names it logs with."""

    name: str
    """The first component of its ``syslog_name`` (what its log lines start with)."""
    config_dir: Path
    queue_directory: str
    data_directory: str
    multi_instance_name: str
    primary: bool
    syslog_names: frozenset[str]
    """``name`` and the first component of every master.cf ``-o syslog_name=``."""


def _expander(config_dir: Path) -> Expander:
    main_path = str(config_dir / "main.cf")
    main = load_main_cf(main_path)
    explicit = {name: item.value for name, item in main.parameters.items()}
    table = releases.defaults_table(releases.base_release())
    defaults = {str(k): str(v) for k, v in table["defaults"].items()}
    raw = frozenset(str(n) for n in table["raw"])
    lines = {name: item.line for name, item in main.parameters.items()}
    return expander_for(explicit, str(config_dir), defaults, raw, main_path, lines=lines)


def read_instance(config_dir: Path | str, *, primary: bool) -> InstanceSpec:
    """The instance whose configuration is ``config_dir``."""
    directory = Path(os.path.normpath(Path(config_dir).absolute()))
    expander = _expander(directory)
    name = expander.expand("syslog_name").split("/")[0] or "postfix"
    names = {name}
    master = directory / "master.cf"
    if master.is_file():
        for service in load_master_cf(str(master)).services:
            value = effective_overrides(service).get("syslog_name")
            if value:
                names.add(expander.expand_value(value).split("/")[0] or name)
    return InstanceSpec(
        name=name,
        config_dir=directory,
        queue_directory=expander.expand("queue_directory"),
        data_directory=expander.expand("data_directory"),
        multi_instance_name=expander.expand("multi_instance_name"),
        primary=primary,
        syslog_names=frozenset(names),
    )


def listed_directories(primary_dir: Path | str) -> tuple[Path, ...]:
    """The primary main.cf's ``multi_instance_directories``, expanded, in order."""
    expander = _expander(Path(primary_dir))
    value = expander.expand("multi_instance_directories").strip()
    return tuple(Path(part) for part in _LIST.split(value) if part)


def discover(
    primary_dir: Path | str, others: Sequence[Path | str] = (), *, follow_list: bool = True
) -> tuple[InstanceSpec, ...]:
    """The primary instance and its others: ``others`` when given, else (``follow_list``)
    those its main.cf lists in ``multi_instance_directories``. One instance: a host
    without other instances."""
    first = read_instance(primary_dir, primary=True)
    extra = list(others) if others else (listed_directories(primary_dir) if follow_list else ())
    why = (
        "given as a Postfix instance"
        if others
        else f"listed in multi_instance_directories of {first.config_dir / 'main.cf'}"
    )
    found = [first]
    seen = {first.config_dir}
    for directory in extra:
        if not Path(directory).is_dir():
            raise SourceUnavailable(str(directory), f"{why}, but not a directory")
        spec = read_instance(directory, primary=False)
        if spec.config_dir not in seen:
            seen.add(spec.config_dir)
            found.append(spec)
    names = [spec.name for spec in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        dirs = ", ".join(str(s.config_dir) for s in found if s.name in twice)
        raise UsageError(
            f"instances {dirs} share the syslog name {', '.join(twice)}: their log lines "
            "cannot be told apart (give each its own syslog_name or multi_instance_name)"
        )
    return tuple(found)


class Router:
    """Which instance a log event belongs to, by its program prefix (``postfix-out``).

    An instance's own ``syslog_name`` wins over another's master.cf ``-o syslog_name``
    (postmulti copies the primary's master.cf, ``-o syslog_name=postfix/submission``
    included). A prefix no instance logs with belongs to none (None).
    """

    __slots__ = ("_index",)

    def __init__(self, instances: Sequence[InstanceSpec]) -> None:
        index: dict[str, int] = {}
        for number, spec in enumerate(instances):
            for name in sorted(spec.syslog_names):
                index.setdefault(name, number)
        for number, spec in enumerate(instances):
            index[spec.name] = number
        self._index = index

    def route(self, event: LogEvent) -> int | None:
        """The index of ``event``'s instance in the list given, or None."""
        return self._index.get(event.instance)

    def names_of(self, number: int) -> frozenset[str]:
        """The program prefixes routed to instance ``number``."""
        return frozenset(name for name, at in self._index.items() if at == number)
