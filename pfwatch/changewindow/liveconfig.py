"""The configuration on disk, loaded once for ``check``, ``wait`` and ``lab``.

Inputs: a configuration directory (and the ``postconf`` to ask for defaults, or None to
use the shipped table). Outputs: :class:`LiveConfig`: parsed main.cf and master.cf, the
expander, every referenced table with its freshness, the engine's :class:`ConfigFacts`
and the lint findings. Errors: :class:`~pfwatch.errors.ConfigSyntaxError` (file, line,
column) when main.cf or master.cf does not parse; :class:`SourceUnavailable` when a file
cannot be read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pfwatch.config.defaults import ParameterKnowledge, parameter_knowledge
from pfwatch.config.expand import Expander
from pfwatch.config.maincf import load_main_cf, parse_main_cf
from pfwatch.config.mastercf import load_master_cf, parse_master_cf
from pfwatch.config.model import MainCf, MasterCf
from pfwatch.config.references import Freshness, TableRef, discover, freshness
from pfwatch.config.services import expander_for
from pfwatch.config.tables import load_table
from pfwatch.errors import ConfigSyntaxError, SourceUnavailable
from pfwatch.events import TableFacts
from pfwatch.knowledge import releases
from pfwatch.lint import LintFinding, LintInput, lint


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """One configuration directory as Postfix would read it now."""

    config_dir: Path
    main: MainCf
    master: MasterCf
    knowledge: ParameterKnowledge
    expander: Expander
    tables: tuple[TableRef, ...]
    freshness: Mapping[str, Freshness]
    digest: str

    def value(self, name: str) -> str:
        """The expanded value of a main.cf parameter (default when unset)."""
        try:
            return self.expander.expand(name)
        except ConfigSyntaxError:
            return self.expander.raw(name) or ""

    @property
    def queue_directory(self) -> Path:
        return Path(self.value("queue_directory") or "/var/spool/postfix")

    @property
    def instance_name(self) -> str:
        """The first component of ``syslog_name`` (``postfix`` on a stock system)."""
        return (self.value("syslog_name") or "postfix").split("/")[0]

    def files(self) -> list[str]:
        """main.cf, master.cf and every table source and compiled file."""
        paths = [self.main.path, self.master.path]
        for table in self.tables:
            if table.source is not None:
                paths.append(table.source)
            paths.extend(table.compiled)
        return paths

    def table_facts(self) -> tuple[TableFacts, ...]:
        return tuple(
            TableFacts(
                ref=t.ref,
                type=t.type,
                source=t.source,
                compiled=t.compiled[0] if t.compiled else None,
                fresh=self.freshness[t.ref].fresh if t.ref in self.freshness else None,
                parameters=t.parameters,
            )
            for t in self.tables
        )

    def table_transports(self) -> dict[str, list[str]]:
        """Values of readable ``transport_maps`` tables (for the missing-transport rule)."""
        found: dict[str, list[str]] = {}
        for table in self.tables:
            if "transport_maps" not in table.parameters or table.source is None:
                continue
            if table.kind != "postmap":
                continue
            try:
                contents = load_table(table.source, "postmap")
            except SourceUnavailable:
                continue
            found[table.ref] = [v for v in contents.entries.values() if v]
        return found

    def lint(self, *, check_daemons: bool = True) -> tuple[LintFinding, ...]:
        return lint(
            LintInput(
                main=self.main,
                master=self.master,
                knowledge=self.knowledge,
                tables=self.table_facts(),
                table_transports=self.table_transports(),
                check_daemons=check_daemons,
            )
        )


def _digest(*texts: str) -> str:
    sha = hashlib.sha256()
    for text in texts:
        sha.update(text.encode("utf-8", "surrogateescape"))
        sha.update(b"\0")
    return sha.hexdigest()[:16]


def build_live_config(
    config_dir: Path,
    main: MainCf,
    master: MasterCf,
    knowledge: ParameterKnowledge,
    digest: str,
) -> LiveConfig:
    """Assemble a :class:`LiveConfig` from already parsed files."""
    expander = expander_for(
        {n: p.value for n, p in main.parameters.items()},
        str(config_dir),
        knowledge.defaults,
        knowledge.raw,
        main.path,
        lines={n: p.line for n, p in main.parameters.items()},
    )
    explicit_or_default = (*knowledge.defaults, *main.parameters)
    tables = discover(main, master.services, expander, tuple(dict.fromkeys(explicit_or_default)))
    fresh = {t.ref: freshness(t) for t in tables}
    return LiveConfig(config_dir, main, master, knowledge, expander, tables, fresh, digest)


def load_live_config(config_dir: Path | str, postconf: str | None = "postconf") -> LiveConfig:
    """Read ``config_dir``/main.cf and master.cf with Postfix's defaults."""
    directory = Path(config_dir)
    if not directory.is_dir():
        raise SourceUnavailable(str(directory), "configuration directory does not exist")
    main = load_main_cf(str(directory / "main.cf"))
    master = load_master_cf(str(directory / "master.cf"))
    # without a postconf, the facts of the release the operator names (PFWATCH_POSTFIX_VERSION)
    knowledge = parameter_knowledge(postconf, release=os.environ.get(releases.ENV_VAR))
    main_text = Path(main.path).read_bytes().decode("utf-8", "surrogateescape")
    master_text = Path(master.path).read_bytes().decode("utf-8", "surrogateescape")
    return build_live_config(directory, main, master, knowledge, _digest(main_text, master_text))


def parse_live_config(
    config_dir: Path, main_text: str, master_text: str, knowledge: ParameterKnowledge
) -> LiveConfig:
    """A :class:`LiveConfig` from file texts (git history, a staged candidate)."""
    main = parse_main_cf(main_text, str(config_dir / "main.cf"))
    master = parse_master_cf(master_text, str(config_dir / "master.cf"))
    return build_live_config(config_dir, main, master, knowledge, _digest(main_text, master_text))
