"""Parsed Postfix configuration files as plain data.

Produced by the grammar wrappers in :mod:`pfwatch.config.maincf`,
:mod:`pfwatch.config.mastercf` and :mod:`pfwatch.config.tables`; consumed by expansion,
reference discovery, snapshots and the semantic diff. Inputs: none. Outputs: frozen
dataclasses. Errors: none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Parameter:
    """One ``name = value`` entry of main.cf (value as written, continuation joined)."""

    name: str
    value: str
    path: str
    line: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A parameter set more than once; Postfix uses the last one."""

    name: str
    first_line: int
    last_line: int


@dataclass(frozen=True, slots=True)
class MainCf:
    """main.cf: parameters in file order (last one wins for duplicates)."""

    path: str
    parameters: Mapping[str, Parameter]
    duplicates: tuple[Duplicate, ...] = ()


@dataclass(frozen=True, slots=True)
class MasterService:
    """One master.cf service entry, fields as written (``-`` kept as ``-``)."""

    name: str
    type: str
    private: str
    unpriv: str
    chroot: str
    wakeup: str
    maxproc: str
    command: str
    args: tuple[str, ...]
    overrides: Mapping[str, str] = field(default_factory=dict)
    path: str = ""
    line: int = 0

    @property
    def key(self) -> str:
        """Identity of the service in master.cf: ``name/type``."""
        return f"{self.name}/{self.type}"


@dataclass(frozen=True, slots=True)
class MasterCf:
    """master.cf: services in file order."""

    path: str
    services: tuple[MasterService, ...]
