"""Per-service limits: ``-o`` overrides expanded on top of main.cf, as the skeletons do.

Every front reads the configuration through one loader (``build_snapshot``); the engine's
facts and the parsed files lint and lab read must resolve the same limits, both through
:func:`pfwatch.config.services.resolve_service`. Properties on generated configurations
check that they agree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.config.defaults import parameter_knowledge
from pfwatch.config.expand import Expander
from pfwatch.config.facts import facts_from_snapshot
from pfwatch.config.mastercf import parse_master_cf
from pfwatch.config.services import effective_overrides, resolve_service
from pfwatch.config.snapshot import build_snapshot, parsed_files
from pfwatch.events import ServiceFacts

KNOWLEDGE = parameter_knowledge(None)


def resolve(main: dict[str, str], line: str) -> ServiceFacts:
    (service,) = parse_master_cf(line + "\n").services
    expander = Expander(main, KNOWLEDGE.defaults, raw_names=KNOWLEDGE.raw)
    return resolve_service(service, expander)


def test_o_value_is_expanded() -> None:
    facts = resolve(
        {"short_idle": "10s", "max_idle": "100s"},
        "smtp inet n - n - - smtpd -o max_idle=$short_idle",
    )
    assert facts.max_idle == 10.0


def test_o_setting_reaches_references_to_it() -> None:
    # max_idle = $my_idle in main.cf; -o my_idle=7s changes what max_idle expands to
    facts = resolve(
        {"my_idle": "50s", "max_idle": "$my_idle"}, "smtp inet n - n - - smtpd -o my_idle=7s"
    )
    assert facts.max_idle == 7.0
    plain = resolve({"my_idle": "50s", "max_idle": "$my_idle"}, "smtp inet n - n - - smtpd")
    assert plain.max_idle == 50.0


def test_units_max_use_and_process_limit() -> None:
    facts = resolve(
        {"default_process_limit": "$procs", "procs": "7"},
        "relay unix - - n - - smtp -o max_idle=2m -o max_use=${uses} -o uses=3",
    )
    assert (facts.max_idle, facts.max_use, facts.process_limit) == (120.0, 3, 7)
    assert resolve({}, "cleanup unix n - n - 0 cleanup").process_limit == 0
    assert resolve({}, "qmgr unix n - n 300 1 qmgr").wakeup == 300
    assert resolve({}, "flush unix n - n 1000? 0 flush").wakeup == 1000


def test_legacy_i_and_m_options() -> None:
    (service,) = parse_master_cf("smtp inet n - n - - smtpd -i 5 -m 9\n").services
    assert effective_overrides(service) == {"max_idle": "5", "max_use": "9"}
    facts = resolve({}, "smtp inet n - n - - smtpd -i 5 -m 9")
    assert (facts.max_idle, facts.max_use) == (5.0, 9)


def test_unusable_values_keep_postfix_defaults() -> None:
    facts = resolve({"max_idle": "soon", "max_use": "-1"}, "smtp inet n - n - - smtpd")
    assert (facts.max_idle, facts.max_use) == (100.0, 100)
    assert resolve({}, "smtp inet n - n - - smtpd").syslog_name == "postfix"


NAMES = st.sampled_from(["short", "mid", "t1", "idle_x"])
TIMES = st.builds(
    lambda n, u: f"{n}{u}", st.integers(0, 5000), st.sampled_from(["", "s", "m", "h", "d", "w"])
)


@st.composite
def configurations(draw: st.DrawFn) -> tuple[str, str]:
    """main.cf and master.cf texts with limits set directly, through $names and -o."""
    names = draw(st.lists(NAMES, unique=True, max_size=4))
    main = {name: draw(TIMES) for name in names}
    refs = [f"${name}" for name in names] or ["100s"]
    if draw(st.booleans()):
        main["max_idle"] = draw(st.sampled_from([*refs, draw(TIMES)]))
    if draw(st.booleans()):
        main["max_use"] = str(draw(st.integers(0, 500)))
    lines = []
    for index in range(draw(st.integers(1, 4))):
        options = []
        if draw(st.booleans()):
            options.append(f"-o max_idle={draw(st.sampled_from([*refs, draw(TIMES)]))}")
        if draw(st.booleans()):
            options.append(f"-o max_use={draw(st.integers(0, 50))}")
        if names and draw(st.booleans()):
            options.append(f"-o {draw(st.sampled_from(names))}={draw(TIMES)}")
        maxproc = draw(st.sampled_from(["-", "0", "1", "20"]))
        lines.append(f"svc{index} unix - - n - {maxproc} smtp " + " ".join(options))
    main_text = "".join(f"{k} = {v}\n" for k, v in main.items())
    return main_text, "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None)
@given(configurations())
def test_the_engine_and_the_parsed_files_resolve_the_same_limits(config: tuple[str, str]) -> None:
    """The engine's facts and what lint and lab read (the snapshot's parsed files) come
    from one read: resolving the parsed services gives the engine's per-service limits."""
    main_text, master_text = config
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "main.cf").write_text(main_text)
        Path(directory, "master.cf").write_text(master_text)
        snapshot = build_snapshot(directory)
        parsed = parsed_files(snapshot)
        from_parsed = tuple(resolve_service(s, parsed.expander) for s in parsed.master.services)
        assert facts_from_snapshot(snapshot).services == from_parsed
