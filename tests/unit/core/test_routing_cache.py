"""Routing caches and partial supersession, driven by hand-built event streams.

A change that reaches daemons through trivial-rewrite's answers is fully live only 30 s
after the old trivial-rewrite is gone (rewrite/resolve clients reuse the last reply,
src/global/resolve_clnt.c:198-205) and once every smtpd that may have cached an old
answer for life (src/smtpd/smtpd_resolve.c:146-162) has exited. A later postmap covers
only the table part of an earlier change.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pfwatch.core.fold import run, step
from pfwatch.core.predict import change_prediction
from pfwatch.core.state import EngineState, from_json, to_json
from pfwatch.events import Finding, Tick
from pfwatch.knowledge.caches import CLIENT_CACHES, lifetime_holders, reply_reuse_seconds
from pfwatch.knowledge.defaults import default_services
from pfwatch.service.status import pending_changes
from pfwatch.testing.streams import StreamBuilder, make_facts, table_edit

T0 = 1_700_000_000.0
VDOMAINS = "/etc/postfix/vdomains"


def named(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.name == name]


def test_cache_rows_cite_the_source_and_say_how_long() -> None:
    assert reply_reuse_seconds() == 30.0
    assert lifetime_holders() == frozenset({"smtpd"})
    sources = " ".join(c.source for c in CLIENT_CACHES)
    for cited in ("rewrite_clnt.c:184", "resolve_clnt.c:198-205", "smtpd_resolve.c:146-162"):
        assert cited in sources
    assert all(c.source.startswith("src/") for c in CLIENT_CACHES)


def routing_stream(smtpd_idle: float = 100) -> StreamBuilder:
    b = StreamBuilder(T0)
    services = [
        replace(s, max_idle=smtpd_idle) if s.daemon == "smtpd" else s
        for s in default_services(100, 100)
    ]
    facts = make_facts({"virtual_mailbox_domains": VDOMAINS}, services=services)
    b.snapshot(facts)
    b.message("cleanup", 20, "AAA").message("qmgr", 21, "AAA")
    b.wait(1).message("virtual", 22, "AAA")
    b.wait(10).change(
        facts, files=[VDOMAINS], tables=[table_edit(VDOMAINS, ["virtual_mailbox_domains"])]
    )
    # an smtpd started after the edit asks the old trivial-rewrite (still running) about
    # the recipient of the message it accepts
    b.wait(9).session(30, duration=2, queue_id="BBB")  # T0+20 .. T0+22
    return b


def test_routing_change_is_fully_live_30_s_after_the_old_trivial_rewrite() -> None:
    b = routing_stream()
    state = EngineState()
    found = run(state, b.events)
    change = state.changes["c1"]
    detected = named(found, "change_detected")[0].data
    rewriter = next(k for k in change.stale if "/trivial-rewrite/" in k)
    pred = change_prediction(state, change)
    stale_rewriter = next(r for r in pred["stale"] if r["process"] == rewriter)
    # before the old trivial-rewrite is gone the bound already includes the 30 s
    assert pred["predicted_live_at"] == pytest.approx(stale_rewriter["latest"] + 30, abs=1e-6)
    assert pred["caches"][0]["label"] == "routing caches"
    assert detected["predicted_live_at"] is not None

    rewrite_gone = state.now
    while not change.routing_cache:
        rewrite_gone += 1.0
        found += step(state, Tick(rewrite_gone))
        assert rewrite_gone < T0 + 400
    cutoff = change.resolved[rewriter].at
    window = change.routing_cache
    assert window is not None
    assert window.earliest == cutoff and window.latest == cutoff + 30
    assert "qmgr may reuse its last routing answer for the same address" in window.rule
    # the trivial-rewrite exit alone no longer makes it live
    assert change.status == "pending" and not named(found, "change_live")
    # smtpd[30] started after the edit but asked the old trivial-rewrite: a cache holder
    assert "postfix/smtpd/30" in change.stale
    assert "postfix/smtpd/30" in window.holders
    assert change_prediction(state, change)["predicted_live_at"] == pytest.approx(
        cutoff + 30, abs=1e-6
    )

    # an smtpd started after the old trivial-rewrite was gone is not stale
    b2 = StreamBuilder(cutoff + 5)
    b2.session(31, duration=1)
    found += run(state, b2.events)
    assert "postfix/smtpd/31" not in change.stale
    found += step(state, Tick(cutoff + 29.5))
    assert change.status == "pending"
    found += step(state, Tick(cutoff + 30.5))
    live = named(found, "change_live")[0].data
    assert change.status == "live" and live["live_at"] == pytest.approx(cutoff + 30, abs=1e-6)
    assert live["basis"] == "inferred" and live["made_live_by"] == rewriter
    assert live["routing_cache"]["latest"] == pytest.approx(cutoff + 30, abs=1e-6)
    assert from_json(to_json(state)).changes["c1"].routing_cache == change.routing_cache


def test_an_smtpd_cache_holder_outliving_the_window_decides() -> None:
    b = routing_stream(smtpd_idle=300)  # smtpd[30] exits ~T0+321, after the window
    state = EngineState()
    found = run(state, b.events)
    step(state, Tick(T0 + 400))
    change = state.changes["c1"]
    assert change.status == "live"
    assert change.live_at == change.resolved["postfix/smtpd/30"].at
    assert change.live_at > change.routing_cache.latest
    assert change.made_live_by == "postfix/smtpd/30"
    assert not named(found, "change_live")


def test_a_parameter_only_smtpd_reads_has_no_cache_window() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({}, max_idle=10)
    b.snapshot(facts).session(5, duration=1).change(facts, parameters=["smtpd_banner"])
    b.tick(T0 + 1 + 10 + 1 + 2.1)
    state = EngineState()
    run(state, b.events)
    change = state.changes["c1"]
    assert change.status == "live" and not change.routing_cache
    assert change.live_at == pytest.approx(T0 + 12, abs=1e-6)


ACCESS = "hash:/etc/postfix/access"
ACCESS_FACTS = {"smtpd_client_restrictions": f"check_client_access {ACCESS}"}


def test_a_later_postmap_supersedes_only_the_table_part_of_a_mixed_change() -> None:
    b = StreamBuilder(T0)
    facts = make_facts(ACCESS_FACTS, max_idle=10)
    b.snapshot(facts).session(5, duration=1)
    b.wait(1).change(
        facts,
        parameters=["smtpd_banner"],
        files=["main.cf", "/etc/postfix/access"],
        tables=[table_edit(ACCESS, ["smtpd_client_restrictions"], compiled_changed=False)],
    )
    state = EngineState()
    run(state, b.events)
    mixed = state.changes["c1"]
    assert [n.action for n in mixed.needs] == ["postmap"]
    b2 = StreamBuilder(T0 + 4)
    b2.change(
        facts,
        files=["/etc/postfix/access.db"],
        tables=[table_edit(ACCESS, ["smtpd_client_restrictions"], source_changed=False)],
        change_id="postmap",
    )
    found = run(state, b2.events)
    assert mixed.needs[0].satisfied_by == "postmap"
    assert mixed.superseded_parts == [f"table:{ACCESS}"]
    assert mixed.superseded_by == ""  # the smtpd_banner part is not covered
    assert mixed.status == "pending" and mixed in pending_changes(state)
    found += step(state, Tick(T0 + 20))
    live = {f.data["change_id"]: f.data for f in named(found, "change_live")}
    assert live["c1"]["made_live_by"] == "postfix/smtpd/5"


def test_a_table_only_change_is_superseded_by_the_postmap_that_covers_it() -> None:
    b = StreamBuilder(T0)
    facts = make_facts(ACCESS_FACTS, max_idle=10)
    b.snapshot(facts).session(5, duration=1)
    b.change(
        facts,
        files=["/etc/postfix/access"],
        tables=[table_edit(ACCESS, ["smtpd_client_restrictions"], compiled_changed=False)],
    )
    b.wait(2).change(
        facts,
        files=["/etc/postfix/access.db"],
        tables=[table_edit(ACCESS, ["smtpd_client_restrictions"], source_changed=False)],
    )
    state = EngineState()
    run(state, b.events)
    assert state.changes["c1"].superseded_by == "c2"
    assert state.changes["c1"] not in pending_changes(state)


def test_the_window_of_a_routing_table_waits_for_its_postmap() -> None:
    b = StreamBuilder(T0)
    facts = make_facts({"transport_maps": "hash:/etc/postfix/transport"}, max_idle=10)
    b.snapshot(facts).message("qmgr", 21, "AAA")
    b.wait(1).change(
        facts,
        files=["/etc/postfix/transport"],
        tables=[
            table_edit("hash:/etc/postfix/transport", ["transport_maps"], compiled_changed=False)
        ],
    )
    b.tick(T0 + 100)
    state = EngineState()
    run(state, b.events)
    change = state.changes["c1"]
    assert change.status == "needs_action" and not change.routing_cache
    b2 = StreamBuilder(T0 + 120)
    b2.change(
        facts,
        files=["/etc/postfix/transport.db"],
        tables=[
            table_edit("hash:/etc/postfix/transport", ["transport_maps"], source_changed=False)
        ],
        change_id="postmap",
    )
    b2.tick(T0 + 121)
    run(state, b2.events)
    # the postmap at T0+120; a trivial-rewrite may take its 10 s table check to restart
    assert change.routing_cache.earliest == T0 + 120
    assert change.routing_cache.latest == T0 + 120 + 10 + 30
    assert change.status == "pending"
    step(state, Tick(change.routing_cache.latest + 0.1))
    assert change.status == "live" and change.live_at == change.routing_cache.latest


def test_a_reload_after_the_old_trivial_rewrite_ends_the_window_early() -> None:
    b = routing_stream()
    state = EngineState()
    run(state, b.events)
    change = state.changes["c1"]
    at = state.now
    while not change.routing_cache:
        at += 1.0
        step(state, Tick(at))
    gone_by = change.routing_cache.gone_by
    b2 = StreamBuilder(gone_by + 5)
    b2.master("master_reloaded", 1)  # qmgr restarts: its cached answers are gone
    run(state, b2.events)
    step(state, Tick(gone_by + 6 + 2))
    assert change.routing_cache.latest == gone_by + 5 + 1  # the stamp's second
    assert change.routing_cache.ended_by.startswith("postfix reload")
    assert change.status == "live" and change.live_at == gone_by + 6
