"""Every front folds the same configuration facts: readers and per-service limits.

Generated main.cf/master.cf pairs (limits set directly, through ``$name`` and ``-o``,
parameters read by different daemons) are loaded the way each front loads them: watch's
start-up (its configuration tracker's first look), ``check`` (``assess``: the same
start-up after its basis), ``wait``'s session (``assess`` to follow, then a poll) and
explain's replay (``load_facts``). The engine state each ends with must give every
service the same limits, and every parameter edit the same affected daemons and modes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.changewindow.livewatch import LiveSession
from pfwatch.changewindow.precheck import CheckRequest, assess
from pfwatch.cli.explain_cmd import load_facts
from pfwatch.core.changes import analyse
from pfwatch.core.fold import run
from pfwatch.core.state import EngineState
from pfwatch.events import ConfigChanged, ConfigFacts, ConfigSnapshotTaken
from pfwatch.service.config_tracker import ConfigTracker

PARAMETERS = ["smtpd_banner", "virtual_mailbox_domains", "header_checks", "max_idle", "idle_x"]
TIMES = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 900), st.sampled_from(["", "s", "m"]))
DAEMONS = st.sampled_from(["smtpd", "cleanup", "trivial-rewrite", "smtp", "qmgr"])


@st.composite
def configurations(draw: st.DrawFn) -> tuple[str, str]:
    main = {"idle_x": draw(TIMES)}
    if draw(st.booleans()):
        main["max_idle"] = draw(st.sampled_from(["$idle_x", draw(TIMES)]))
    if draw(st.booleans()):
        main["max_use"] = str(draw(st.integers(1, 500)))
    lines = []
    for index in range(draw(st.integers(1, 4))):
        options = []
        if draw(st.booleans()):
            options.append(f"-o max_idle={draw(st.sampled_from(['$idle_x', draw(TIMES)]))}")
        if draw(st.booleans()):
            options.append(f"-o max_use={draw(st.integers(1, 50))}")
        if draw(st.booleans()):
            options.append(f"-o idle_x={draw(TIMES)}")
        command = draw(DAEMONS)
        kind = "inet" if command == "smtpd" else "unix"
        name = f"127.0.0.1:{2500 + index}" if kind == "inet" else f"svc{index}"
        lines.append(f"{name} {kind} - - n - - {command} " + " ".join(options))
    return "".join(f"{k} = {v}\n" for k, v in main.items()), "\n".join(lines) + "\n"


def _folded(facts: ConfigFacts, now: float) -> ConfigFacts:
    state = EngineState()
    run(state, [ConfigSnapshotTaken(now, facts)])
    assert state.facts is not None
    return state.facts


def _view(facts: ConfigFacts) -> dict[str, object]:
    """Per-service limits, and what an edit of each parameter affects, and how."""
    readers = {}
    for name in PARAMETERS:
        edit = ConfigChanged(
            at=1.0,
            change_id="c",
            files=("main.cf",),
            parameters=(name,),
            services=(),
            tables=(),
            facts=facts,
            summary=(),
        )
        readers[name] = sorted(
            (i.service, i.daemon, i.mode, i.max_idle, i.max_use)
            for i in analyse(edit, facts).impacts
        )
    limits = sorted((s.name, s.type, s.max_idle, s.max_use) for s in facts.services)
    return {"limits": limits, "readers": readers}


@settings(max_examples=25, deadline=None)
@given(configurations())
def test_every_front_folds_the_same_readers_and_limits(config: tuple[str, str]) -> None:
    main_text, master_text = config
    with tempfile.TemporaryDirectory() as directory:
        queue = Path(directory, "queue")
        queue.mkdir()
        Path(directory, "main.cf").write_text(main_text + f"queue_directory = {queue}\n")
        Path(directory, "master.cf").write_text(master_text)
        now = time.time()
        first = ConfigTracker(directory, None).check(now).events
        watch = next(e for e in first if isinstance(e, ConfigSnapshotTaken)).facts
        request = CheckRequest(Path(directory), now, use_git=False)
        check = assess(request).state.facts
        session = LiveSession.start(request)
        try:
            session.poll(now + 1.0)
            wait = session.state.facts
        finally:
            session.close()
        explain = load_facts(directory, None)
        assert check is not None and wait is not None
        views = {
            name: _view(_folded(facts, now) if name in ("watch", "explain") else facts)
            for name, facts in (
                ("watch", watch), ("check", check), ("wait", wait), ("explain", explain)
            )
        }  # fmt: skip
        assert views["check"] == views["watch"]
        assert views["wait"] == views["watch"]
        assert views["explain"] == views["watch"]
