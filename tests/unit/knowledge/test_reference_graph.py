"""ReferenceGraph (built once per change) answers exactly as the old per-call scan did.

Inputs: the demo configuration shipped in the package, a few real main.cf/master.cf files
of the shared corpus (skipped when absent) and the shipped Postfix defaults (many ``$``
references). For several changed-parameter sets and master.cf ``-o`` overrides,
:meth:`ReferenceGraph.affected` and :func:`affected_parameters` must equal
:func:`_old_affected_parameters`, a copy of the algorithm they replaced.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from pfwatch.config.defaults import postfix_defaults
from pfwatch.config.maincf import parse_main_cf, read_text
from pfwatch.config.mastercf import parse_master_cf
from pfwatch.knowledge import params as kp

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "pfwatch" / "demo" / "config"
CORPUS_CONFIGS = (
    ("configs-Sampistaroy_mail/etc/postfix/main.cf", None),
    ("docker-mailserver/target/postfix/main.cf", "docker-mailserver/target/postfix/master.cf"),
    ("mailcow-dockerized/data/conf/postfix/main.cf", None),
    ("docker-mailserver/test/config/override-configs/postfix-main.cf", None),
)

_OLD_REF = re.compile(r"\$(?:\{|\()?([A-Za-z0-9_]+)")


def _old_affected_parameters(
    changed: Iterable[str],
    values: Iterable[Mapping[str, str]],
    overrides: Mapping[str, str] | None = None,
) -> set[str]:
    """The algorithm before ReferenceGraph: rebuild the referrers map on every call."""
    overrides = overrides or {}
    referrers: dict[str, set[str]] = {}
    for mapping in values:
        for name, value in mapping.items():
            if name in overrides:
                continue
            for ref in set(_OLD_REF.findall(value)):
                referrers.setdefault(ref, set()).add(name)
    for name, value in overrides.items():
        for ref in set(_OLD_REF.findall(value)):
            referrers.setdefault(ref, set()).add(name)
    result = {p for p in changed if p not in overrides}
    todo = list(result)
    while todo:
        current = todo.pop()
        for parent in referrers.get(current, ()):
            if parent not in result:
                result.add(parent)
                todo.append(parent)
    return result


def _main_values(path: Path) -> dict[str, str]:
    main = parse_main_cf(read_text(str(path)), str(path))
    return {name: item.value for name, item in main.parameters.items()}


def _master_overrides(path: Path | None) -> list[dict[str, str]]:
    if path is None or not path.is_file():
        return []
    master = parse_master_cf(read_text(str(path)), str(path))
    return [dict(s.overrides) for s in master.services if s.overrides]


def _edited(values: Mapping[str, str], rng: random.Random) -> dict[str, str]:
    """An "old snapshot": some values rewired to reference other names, some dropped."""
    names = sorted(values)
    old = dict(values)
    for name in rng.sample(names, min(8, len(names))):
        old[name] = f"${rng.choice(names)} ${{{rng.choice(names)}}} $({rng.choice(names)})"
    for name in rng.sample(names, min(3, len(names))):
        old.pop(name, None)
    return old


def _changed_sets(values: Mapping[str, str], rng: random.Random) -> list[list[str]]:
    names = sorted(values)
    referenced = sorted({r for v in values.values() for r in kp.reference_names(v)})
    return [
        [],
        ["*"],
        ["no_such_parameter"],
        ["myhostname"],
        ["mydomain", "myorigin", "smtpd_banner"],
        referenced[:20],
        rng.sample(referenced, min(5, len(referenced))),
        rng.sample(names, min(10, len(names))),
        names,
    ]


def _override_sets(
    values: Mapping[str, str], master: list[dict[str, str]], rng: random.Random
) -> list[dict[str, str] | None]:
    names = sorted(values)
    referenced = sorted({r for v in values.values() for r in kp.reference_names(v)})
    made: list[dict[str, str] | None] = [None, {}, {"myhostname": "fixed.example"}]
    made.append({"smtpd_client_restrictions": "$mua_client_restrictions, $mydomain"})
    made.append(dict.fromkeys(rng.sample(referenced, min(6, len(referenced))), "shielded"))
    made.append({name: f"${rng.choice(names)}" for name in rng.sample(names, min(6, len(names)))})
    made.append({"mydomain": "$myhostname", "myhostname": "$mydomain"})  # a cycle
    return made + list(master)


def _corpus_configs(corpus: Path) -> list[tuple[dict[str, str], list[dict[str, str]]]]:
    configs = []
    for main, master in CORPUS_CONFIGS:
        if (corpus / main).is_file():
            master_path = corpus / master if master else None
            configs.append((_main_values(corpus / main), _master_overrides(master_path)))
    return configs


def _compare(values_list: list[Mapping[str, str]], master: list[dict[str, str]]) -> int:
    rng = random.Random(20261122)
    merged: dict[str, str] = {}
    for mapping in values_list:
        merged.update(mapping)
    graph = kp.ReferenceGraph.of(values_list)
    checked = 0
    for changed in _changed_sets(merged, rng):
        for overrides in _override_sets(merged, master, rng):
            want = _old_affected_parameters(changed, values_list, overrides)
            assert graph.affected(changed, overrides) == want, (changed, overrides)
            assert kp.affected_parameters(changed, values_list, overrides) == want
            checked += 1
    return checked


def test_demo_config_with_defaults_matches_the_old_algorithm() -> None:
    defaults = dict(postfix_defaults(None))
    main = _main_values(DEMO / "main.cf")
    new = {**defaults, **main}
    old = _edited(new, random.Random(7))
    master = _master_overrides(DEMO / "master.cf")
    assert _compare([new, old], master) > 50
    # the comparison is not vacuous: references do propagate and overrides do shield
    reached = kp.ReferenceGraph.of([new]).affected(["myhostname"])
    assert {"myhostname", "myorigin", "smtpd_banner"} <= reached
    assert "smtpd_banner" not in kp.ReferenceGraph.of([new]).affected(
        ["myhostname"], {"smtpd_banner": "fixed"}
    )


@pytest.mark.corpus
def test_corpus_configs_match_the_old_algorithm(corpus_dir: Path) -> None:
    defaults = dict(postfix_defaults(None))
    configs = _corpus_configs(corpus_dir)
    if not configs:
        pytest.skip("none of the chosen corpus main.cf files is present")
    for index, (main, master) in enumerate(configs):
        new = {**defaults, **main}
        old = _edited(new, random.Random(index))
        assert _compare([new, old], master) > 50
        assert _compare([main], master) > 50  # without defaults: a sparse graph


def test_a_generator_of_changed_names_is_read_once_like_before() -> None:
    values = {"a": "$b", "b": "$c", "c": "x"}
    graph = kp.ReferenceGraph.of([values])
    assert graph.affected(n for n in ["c"]) == {"a", "b", "c"}
    assert graph.affected(iter(["b"]), {"a": "$c"}) == {"b"}
