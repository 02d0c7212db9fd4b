"""The limits a master.cf service's processes run under, resolved as Postfix resolves them.

The one place where ``-o`` overrides, ``$name`` references and per-service limits meet.
A daemon's skeleton loads main.cf, then applies the service's ``-o name=value`` (and the
legacy ``-i`` = max_idle, ``-m`` = max_use) with mail_conf_update() in getopt order
(src/master/single_server.c:529-546; the same in multi_server.c, trigger_server.c,
event_server.c, dgram_server.c), and only then reads its parameters with
get_mail_conf_*(), which ``$``-expands each value (mail_conf_lookup_eval(),
src/global/mail_conf_str.c:119-130; mail_conf_time.c for time values). So
``-o max_idle=$short_idle`` with ``short_idle = 10s`` in main.cf gives that service
``max_idle`` 10 s, and an ``-o`` setting also changes every ``$name`` that refers to it.
The process limit ``-`` means ``default_process_limit``, the wakeup ``-`` means none and
a trailing ``?`` only marks the wakeup conditional (src/master/master_ent.c, the
``maxproc`` and ``wakeup`` fields).

Inputs: a :class:`~pfwatch.config.model.MasterService` and the main.cf
:class:`~pfwatch.config.expand.Expander`. Outputs: :class:`~pfwatch.events.ServiceFacts`.
Errors: none (a value Postfix would refuse leaves Postfix's default, as the daemon's own
default cannot be known better).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath

from pfwatch.config.expand import Expander
from pfwatch.config.model import MasterService
from pfwatch.errors import ConfigSyntaxError
from pfwatch.events import ServiceFacts
from pfwatch.knowledge.daemons import TIMINGS
from pfwatch.knowledge.timevalue import PostfixTime

__all__ = ["DEFAULT_MAX_IDLE", "DEFAULT_MAX_USE", "effective_overrides", "resolve_service"]

DEFAULT_MAX_IDLE = TIMINGS["max_idle_default"][0]
"""``max_idle`` default (the cited row: :data:`pfwatch.knowledge.daemons.TIMINGS`)."""
DEFAULT_MAX_USE = int(TIMINGS["max_use_default"][0])
DEFAULT_PROCESS_LIMIT = int(TIMINGS["process_limit_default"][0])

_LEGACY = {"-i": "max_idle", "-m": "max_use"}


def effective_overrides(service: MasterService) -> dict[str, str]:
    """The settings the daemon's getopt applies, in order (later ones win)."""
    found: dict[str, str] = {}
    args = service.args
    index = 0
    while index < len(args):
        word = args[index]
        name = _LEGACY.get(word[:2]) if len(word) >= 2 else None
        if name is not None:
            value = word[2:] or (args[index + 1] if index + 1 < len(args) else "")
            found[name] = value
            index += 1 if word[2:] else 2
            continue
        if word == "-o" and index + 1 < len(args):
            index += 2
            continue
        index += 1
    # -o settings as the grammar read them (braces and quirks handled there); a legacy
    # -i/-m only wins when no -o sets the same parameter (rare enough to ignore order)
    merged = dict(found)
    merged.update(service.overrides)
    return merged


def _integer(value: str) -> int | None:
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if number >= 0 else None


def resolve_service(service: MasterService, expander: Expander) -> ServiceFacts:
    """``service`` with its effective max_idle, max_use, process limit and syslog_name."""
    overrides = effective_overrides(service)
    local = expander.with_overrides(overrides) if overrides else expander

    def value(name: str) -> str:
        try:
            return local.expand(name)
        except ConfigSyntaxError:
            return local.raw(name) or ""

    idle = PostfixTime.parse(value("max_idle"))
    use = _integer(value("max_use"))
    limit = _integer(value("default_process_limit")) if service.maxproc == "-" else None
    if service.maxproc != "-":
        limit = _integer(service.maxproc)
    wakeup = 0 if service.wakeup == "-" else _integer(service.wakeup.rstrip("?"))
    return ServiceFacts(
        name=service.name,
        type=service.type,
        daemon=PurePosixPath(service.command).name,
        max_idle=float(idle.seconds) if idle is not None else DEFAULT_MAX_IDLE,
        max_use=use if use is not None else DEFAULT_MAX_USE,
        process_limit=limit if limit is not None else DEFAULT_PROCESS_LIMIT,
        wakeup=wakeup or 0,
        syslog_name=value("syslog_name") or "postfix",
        overrides=dict(service.overrides),
    )


def resolve_services(
    services: tuple[MasterService, ...], expander: Expander
) -> tuple[ServiceFacts, ...]:
    """:func:`resolve_service` for each service, in master.cf order."""
    return tuple(resolve_service(s, expander) for s in services)


def expander_for(
    parameters: Mapping[str, str],
    config_dir: str,
    defaults: Mapping[str, str],
    raw_names: frozenset[str],
    path: str,
    *,
    lines: Mapping[str, int] | None = None,
) -> Expander:
    """The expander a daemon of ``config_dir`` sees: main.cf on Postfix's defaults, with
    ``config_directory`` set to the directory itself (``postfix -c``/MAIL_CONFIG). Every
    front builds its main.cf expansion here (snapshots for watch and explain, the live
    configuration of check, wait and lab); ``pfwatch config`` alone expands as postconf
    does (:mod:`pfwatch.config.postconf`: config_directory only when given)."""
    explicit = dict(parameters)
    explicit.setdefault("config_directory", config_dir)
    return Expander(explicit, defaults, raw_names=raw_names, path=path, lines=lines)
