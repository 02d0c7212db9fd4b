"""What a configuration change touches: affected services, how each picks it up, and
the actions it needs (postmap, reload, stop/start).

Inputs: a :class:`~pfwatch.events.ConfigChanged` and the previous
:class:`~pfwatch.events.ConfigFacts`. Outputs: :class:`Analysis` (impacts, needs,
advisories). Rules come from :mod:`pfwatch.knowledge` (each row cites Postfix source).
Pure. Errors: none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from pfwatch.core.records import Impact, ImpactMode, Need, NeedAction
from pfwatch.events import ConfigChanged, ConfigFacts, ServiceFacts, TableEdit
from pfwatch.knowledge import params as kp
from pfwatch.knowledge.daemons import DaemonSpec, spec_for
from pfwatch.knowledge.defaults import default_services
from pfwatch.knowledge.tables import PROXY_NOTE, split_ref, table_type

ALL = "*"
"""A parameter list containing ``*`` means: unknown which parameters changed (all)."""

MODE_RANK: dict[ImpactMode | str, int] = {
    "advisory": 0,
    "immediate": 1,
    "table_check": 2,
    "table_check_10s": 3,
    "restart": 4,
    "reload": 5,
}
RESOLVE_CACHE_SOURCE = "src/smtpd/smtpd_resolve.c:146-162; src/smtpd/smtpd_check.c:868-872"


@dataclass
class Analysis:
    """The outcome of :func:`analyse`."""

    impacts: list[Impact] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)
    advisories: list[str] = field(default_factory=list)

    def need(self, action: NeedAction, why: str, source: str, target: str = "") -> None:
        for existing in self.needs:
            if existing.action == action and existing.target == target:
                return
        self.needs.append(Need(action, why, source, target))


def _self_mode(spec: DaemonSpec, facts: ConfigFacts) -> ImpactMode:
    if spec.name == "verify" and facts.parameters.get("address_verify_map", "x") == "":
        return "reload"
    return "reload" if spec.pickup == "reload" else "restart"


def _param_mode(
    spec: DaemonSpec, facts: ConfigFacts, changed: set[str]
) -> tuple[ImpactMode | None, list[str]]:
    if ALL in changed:
        return ("advisory" if spec.long_lived else "restart"), [ALL]
    own = sorted(p for p in changed if kp.own_reads(spec.name, p))
    if own:
        return _self_mode(spec, facts), own
    glob = sorted(p for p in changed if kp.is_global(p))
    if glob:
        return ("advisory" if spec.long_lived else "restart"), glob
    return None, []


def _table_mode(
    spec: DaemonSpec, facts: ConfigFacts, edit: TableEdit, result: Analysis
) -> ImpactMode | None:
    via_proxy, kind, _ = split_ref(edit.ref)
    kind = edit.type or kind
    row = table_type(kind)
    if via_proxy and spec.name != "proxymap":
        return None
    if row.behaviour in ("indexed", "lmdb"):
        if edit.source_changed and not edit.compiled_changed:
            result.need(
                "postmap",
                f"{edit.source or edit.ref} is newer than its {kind} file: "
                "no process sees the edit until postmap rebuilds it",
                row.source,
                edit.source or edit.ref,
            )
        if row.behaviour == "lmdb":
            return "immediate"
        check = spec.table_check
        if check == "never":
            return _self_mode(spec, facts)
        return "table_check_10s" if check == "every_10s" else "table_check"
    if row.behaviour == "no_file":
        return None
    if row.behaviour == "live_query" and not edit.source_changed:
        return "immediate"
    return _self_mode(spec, facts)


def analyse(change: ConfigChanged, old: ConfigFacts | None) -> Analysis:
    """Impacts per master.cf service, needed actions and advisories for one change."""
    facts = change.facts
    services: tuple[ServiceFacts, ...] = facts.services or default_services()
    values: list[Mapping[str, str]] = [facts.parameters]
    if old is not None:
        values.append(old.parameters)
    result = Analysis()
    graph = kp.ReferenceGraph.of(values)
    changed_all = graph.affected(change.parameters)
    for service in services:
        spec = spec_for(service.daemon)
        changed = graph.affected(change.parameters, service.overrides)
        if ALL in change.parameters:
            changed.add(ALL)
        mode, via = _param_mode(spec, facts, changed)
        why = f"reads {', '.join(via[:4])}" if via else ""
        if via == [ALL]:
            why = "re-reads main.cf when it restarts (which parameters changed is unknown)"
        for edit in change.tables:
            tparams = graph.affected(edit.parameters, service.overrides)
            if not any(kp.reads(spec.name, p) for p in tparams):
                continue
            tmode = _table_mode(spec, facts, edit, result)
            if tmode and MODE_RANK[tmode] > (MODE_RANK[mode] if mode else -1):
                mode = tmode
                why = f"reads {edit.ref} via {', '.join(sorted(tparams)[:3])}"
                via = [edit.ref]
        if f"{service.name}/{service.type}" in change.services:
            mode, via = "reload", ["master.cf"]
            why = "its master.cf entry changed: new processes start only after postfix reload"
        if not mode:
            continue
        result.impacts.append(_impact(service, spec, mode, via, why))
    held = sorted({i.daemon for i in result.impacts if i.mode == "advisory"})
    if held:
        result.advisories.append(
            f"{', '.join(held)} read every global parameter but never restart by themselves "
            "(qmgr.c:741-742, tlsmgr.c:992-993, ...): they keep the old values until postfix "
            "reload; whether they use the edited ones is not known, so pfwatch does not wait "
            "for them"
        )
    _resolve_cache(result, services)
    _actions(change, result, changed_all)
    return result


def _impact(
    service: ServiceFacts, spec: DaemonSpec, mode: ImpactMode, via: list[str], why: str
) -> Impact:
    source = spec.pickup_source or spec.source
    if mode.startswith("table_check"):
        source = spec.table_check_source
    return Impact(
        service=service.name,
        type=service.type,
        daemon=spec.name,
        mode=mode,
        via=tuple(via),
        why=why,
        source=source,
        max_idle=service.max_idle,
        max_use=service.max_use,
    )


def _resolve_cache(result: Analysis, services: tuple[ServiceFacts, ...]) -> None:
    rewriter = [
        i
        for i in result.impacts
        if i.daemon == "trivial-rewrite" and i.mode in ("restart", "table_check_10s")
    ]
    if not rewriter:
        return
    if all(i.via == (ALL,) for i in rewriter):
        result.advisories.append(
            "which parameters changed is unknown: if the edit changed routing "
            "(trivial-rewrite's answers), qmgr may reuse its last routing answer for the same "
            "address for up to 30 s after trivial-rewrite exits (src/global/resolve_clnt.c:"
            "198-205) and smtpd keeps its answers for life (src/smtpd/smtpd_resolve.c:146-162); "
            "pfwatch does not wait for those caches here"
        )
    seen = {(i.service, i.type) for i in result.impacts if MODE_RANK[i.mode] >= 4}
    for service in services:
        spec = spec_for(service.daemon)
        if spec.name != "smtpd" or (service.name, service.type) in seen:
            continue
        result.impacts = [
            i for i in result.impacts if (i.service, i.type) != (service.name, service.type)
        ]
        impact = _impact(
            service,
            spec,
            "restart",
            ["resolve cache"],
            "caches trivial-rewrite's routing answers for its whole lifetime",
        )
        result.impacts.append(replace(impact, source=RESOLVE_CACHE_SOURCE))


def _actions(change: ConfigChanged, result: Analysis, changed: set[str]) -> None:
    for name in sorted(changed):
        if name in kp.STOP_START:
            rule = kp.STOP_START[name]
            result.need("restart", f"{name}: {rule.why}", rule.source, name)
        elif name in kp.MASTER_RELOAD:
            rule = kp.MASTER_RELOAD[name]
            result.need("reload", f"{name}: {rule.why}", rule.source, name)
    master_cf = any(f.endswith("master.cf") for f in change.files)
    if change.services or master_cf:
        rule = kp.MASTER_CF_RELOAD
        target = ", ".join(change.services) or "master.cf"
        result.need("reload", rule.why, rule.source, target)
    for impact in result.impacts:
        if impact.mode == "reload" and impact.via != ("master.cf",):
            spec = spec_for(impact.daemon)
            result.need(
                "reload",
                f"{impact.service} ({spec.name}) never exits by itself "
                f"({spec.override_source or spec.pickup_source})",
                spec.pickup_source or spec.source,
                impact.service,
            )
    if any(split_ref(t.ref)[0] for t in change.tables):
        result.advisories.append(PROXY_NOTE)


def needs_actions(needs: Sequence[Need]) -> list[str]:
    """The distinct unsatisfied actions, in the order an operator runs them."""
    order = ("postmap", "reload", "restart")
    pending = {n.action for n in needs if n.satisfied_at is None}
    return [a for a in order if a in pending]
