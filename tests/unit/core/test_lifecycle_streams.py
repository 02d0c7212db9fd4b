"""The core driven by hand-built event streams: every daemon class and exit path."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pfwatch.core.fold import fold, run, step
from pfwatch.core.records import Need
from pfwatch.core.state import EngineState, Settings, from_json, to_json
from pfwatch.events import Finding, ProcessTableSeen, ServiceFacts, Tick
from pfwatch.knowledge.defaults import default_services
from pfwatch.testing.streams import StreamBuilder, make_facts, table_edit

T0 = 1_700_000_000.0


def engine(b: StreamBuilder, **settings: float) -> tuple[EngineState, list[Finding]]:
    state = EngineState(settings=Settings(**settings))  # type: ignore[arg-type]
    return state, run(state, b.events)


def named(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.name == name]


def start(max_idle: float = 10, max_use: int = 100, **params: str) -> tuple[StreamBuilder, object]:
    b = StreamBuilder(T0)
    facts = make_facts(params, max_idle=max_idle, max_use=max_use)
    b.snapshot(facts)
    return b, facts


def test_single_server_idle_exit_is_inferred_and_live_claimed_after_margin() -> None:
    b, facts = start(max_idle=10)
    b.session(101, duration=2)  # ends T0+2
    b.wait(3).change(facts, parameters=["smtpd_banner"])  # T0+5
    b.tick(T0 + 2 + 10 + 1 + 1.9)  # latest = T0+13; margin 2 -> not yet
    state, found = engine(b)
    assert not named(found, "change_live")
    detected = named(found, "change_detected")[0].data
    assert detected["stale_processes"] == ["smtpd[101]"]
    assert detected["predicted_live_at"] == pytest.approx(T0 + 13, abs=1e-6)
    assert detected["needs"] == []
    step(state, Tick(T0 + 15.1))
    live = next(iter(state.changes.values()))
    assert live.status == "live" and live.live_at == pytest.approx(T0 + 13, abs=1e-6)
    assert live.live_basis == "inferred"
    exited = state.history[-1]
    assert exited.exit_reason == "idle_timeout" and exited.exit_basis == "inferred"
    assert exited.exited_at == pytest.approx(T0 + 12.5, abs=1e-6)
    assert "without -v" in exited.exit_note


def test_verbose_idle_timeout_is_observed_and_claimed_at_once() -> None:
    b, facts = start(max_idle=10)
    b.session(7, duration=1).change(facts, parameters=["smtpd_helo_required"])
    b.wait(10).log("verbose_idle_timeout", "smtpd", 7)
    _state, found = engine(b)
    live = named(found, "change_live")[0]
    assert live.data["basis"] == "observed" and live.at == pytest.approx(T0 + 11, abs=1e-6)
    assert live.data["made_live_by"] == "postfix/smtpd/7"


def test_a_logged_exit_is_live_at_the_end_of_its_whole_second_stamp() -> None:
    """The line stamped S was written somewhere in [S, S + 1): the exit it announces may
    be that late, and a live time is never dated before the process was last alive."""
    b, facts = start(max_idle=10)
    b.session(7, duration=1).change(facts, parameters=["smtpd_helo_required"])
    b.wait(10).log("verbose_idle_timeout", "smtpd", 7)
    _state, found = engine(b)
    assert named(found, "change_live")[0].data["live_at"] == pytest.approx(T0 + 12, abs=1e-6)


def test_an_exit_seen_in_proc_is_live_at_the_first_poll_without_it() -> None:
    b, facts = start(max_idle=100)
    b.at(T0 + 0.25).procs([("smtpd", 7, T0 - 50)])
    b.at(T0 + 1.5).change(facts, parameters=["smtpd_helo_required"])
    b.at(T0 + 2.75).procs([("smtpd", 7, T0 - 50)])  # last seen alive
    b.at(T0 + 3.25).procs([])  # first poll without it
    b.tick(T0 + 3.5)
    _state, found = engine(b)
    live = named(found, "change_live")[0].data
    assert live["live_at"] == pytest.approx(T0 + 3.25, abs=1e-6) and live["basis"] == "observed"


def test_new_session_on_a_stale_process_moves_its_predicted_exit() -> None:
    b, facts = start(max_idle=10)
    b.session(5, duration=1).change(facts, parameters=["smtpd_banner"])
    b.wait(5).session(5, duration=1)
    _, found = engine(b)
    updates = named(found, "change_prediction_updated")
    first = named(found, "change_detected")[0].data["predicted_live_at"]
    assert updates and updates[-1].data["predicted_live_at"] == pytest.approx(first + 6, abs=1e-6)


def test_use_limit_exit_after_max_use_sessions() -> None:
    b, facts = start(max_idle=100, max_use=3)
    b.session(9).change(facts, parameters=["smtpd_banner"])
    b.wait(1).session(9).wait(1).session(9)
    last = b.now
    b.wait(1 + 1.9).tick()  # latest possible exit (1 s stamps) + margin not reached yet
    state, found = engine(b)
    exit_ = named(found, "process_exited")[0].data
    assert exit_["reason"] == "use_limit" and exit_["sessions"] == 3
    assert not named(found, "change_live")
    found = step(state, Tick(last + 3.01))
    assert named(found, "change_live")[0].data["live_at"] == pytest.approx(last + 1, abs=1e-6)


def test_reload_ends_idle_processes_at_once_and_busy_ones_after_their_session() -> None:
    b, facts = start(max_idle=100)
    b.session(1, duration=1)
    b.log("session_connect", "smtpd", 2, client="slow[1.2.3.4]")
    b.change(facts, files=["master.cf"], services=["smtp/inet"])
    b.wait(2).master("master_reloaded", 1)
    state, found = engine(b)
    change = next(iter(state.changes.values()))
    assert change.status == "pending"  # smtpd[2] still serves its session
    exits = [(f.data["daemon"], f.data["pid"]) for f in named(found, "process_exited")]
    # a session without a recipient asked trivial-rewrite nothing: none is assumed
    assert exits == [("smtpd", 1)]
    b2 = StreamBuilder(b.now)
    b2.wait(3).log("session_disconnect", "smtpd", 2, client="slow[1.2.3.4]")
    ended = b2.now
    b2.wait(3.1).tick()
    found2 = run(state, b2.events)
    assert named(found2, "process_exited")[0].data["reason"] == "reload"
    assert change.status == "live" and change.live_at == pytest.approx(ended + 1, abs=1e-6)


def test_master_cf_edit_needs_reload_and_is_never_live_without_it() -> None:
    b, facts = start(max_idle=5)
    b.change(facts, files=["master.cf"], services=["smtp/inet"]).tick(T0 + 1000)
    state, found = engine(b)
    assert named(found, "change_detected")[0].data["needs"] == ["reload"]
    assert not named(found, "change_live")
    assert next(iter(state.changes.values())).status == "needs_action"


def test_reload_stamped_in_the_second_of_the_edit_satisfies_it() -> None:
    """``cp master.cf ...; postfix reload`` in a script: the log's whole-second stamp of
    the reload may precede the edit's precise time; the reload still counts, but one
    stamped in an earlier second does not."""

    def need_after_reload_stamped(stamp: float) -> Need:
        b, facts = start(max_idle=5)
        b.at(T0 + 10.4).change(facts, files=["master.cf"], services=["smtp/inet"])
        b.master("master_reloaded", 1)  # the log line arrives after the snapshot...
        b.events[-1] = replace(b.events[-1], at=stamp)  # ...stamped in whole seconds
        b.at(T0 + 11).tick()
        state, _found = engine(b)
        return next(iter(state.changes.values())).needs[0]

    same_second = need_after_reload_stamped(T0 + 10)
    assert same_second.action == "reload"
    # the latest the reload can have come: the end of its stamp's second
    assert same_second.satisfied_at == pytest.approx(T0 + 11, abs=1e-6)
    assert need_after_reload_stamped(T0 + 9).satisfied_at is None


def test_inet_interfaces_needs_stop_and_start() -> None:
    b, facts = start(max_idle=5)
    b.change(facts, parameters=["inet_interfaces"]).wait(50).master("master_reloaded", 1)
    b.wait(500).tick()
    state, found = engine(b)
    assert named(found, "change_detected")[0].data["needs"] == ["restart"]
    assert not named(found, "change_live")
    b2 = StreamBuilder(b.now)
    b2.wait(1).master("master_stopped", 1, signal="15").wait(2).master("master_started", 77)
    found2 = run(state, b2.events)
    assert named(found2, "postfix_stopped") and named(found2, "postfix_started")
    assert named(found2, "change_live")[0].data["live_at"] == pytest.approx(b2.now, abs=1e-6)


def test_hash_rebuilt_idle_processes_restart_before_serving() -> None:
    b, facts = start(max_idle=100, smtpd_client_restrictions="check_client_access hash:/x")
    b.session(3)
    b.log("session_connect", "smtpd", 4)
    b.change(facts, files=["/x.db"], tables=[table_edit("hash:/x", ["smtpd_client_restrictions"])])
    b.wait(2).log("session_disconnect", "smtpd", 4).wait(1).log(
        "table_changed", "smtpd", 3, table="hash:/x(0,lock)", type="hash", path="/x"
    )
    state, found = engine(b)
    detected = named(found, "change_detected")[0].data
    assert detected["stale_processes"] == ["smtpd[4]"]  # only the busy one
    live = named(found, "change_live")[0].data
    assert live["live_at"] == pytest.approx(T0 + 1 + 2, abs=1e-6)
    assert any(p.exit_reason == "table_changed" for p in state.history)


def test_hash_source_without_postmap_is_never_live_until_rebuilt() -> None:
    b, facts = start(max_idle=5, smtpd_client_restrictions="check_client_access hash:/x")
    b.change(
        facts,
        files=["/x"],
        tables=[table_edit("hash:/x", ["smtpd_client_restrictions"], compiled_changed=False)],
    ).tick(T0 + 900)
    state, found = engine(b)
    detected = named(found, "change_detected")[0].data
    assert detected["needs"] == ["postmap"] and detected["predicted_live_at"] is None
    assert not named(found, "change_live")
    b2 = StreamBuilder(b.now).change(
        facts,
        files=["/x.db"],
        change_id="later",
        tables=[table_edit("hash:/x", ["smtpd_client_restrictions"])],
    )
    found2 = run(state, b2.events)
    assert {f.data["change_id"] for f in named(found2, "change_live")} == {"c1", "later"}


def test_trivial_rewrite_exit_is_inferred_from_its_clients() -> None:
    b, facts = start(max_idle=100, virtual_mailbox_domains="/etc/postfix/vdomains")
    b.message("cleanup", 20, "AAA").message("qmgr", 21, "AAA")  # last request at T0
    # the delivery and qmgr's "removed" ask trivial-rewrite nothing (qmgr resolved at T0)
    b.wait(1).message("virtual", 22, "AAA").message("qmgr", 21, "AAA")
    b.wait(10).change(
        facts,
        files=["/etc/postfix/vdomains"],
        tables=[table_edit("/etc/postfix/vdomains", ["virtual_mailbox_domains"])],
    )
    b.tick(T0 + 5 + 100 + 1 + 2.5)
    state, found = engine(b)
    rewrite = next(p for p in state.history if p.daemon == "trivial-rewrite")
    assert rewrite.inferred and rewrite.clients_gone_at == pytest.approx(T0 + 5, abs=1e-3)
    assert rewrite.exited_at == pytest.approx(T0 + 105.5, abs=1e-3)
    # gone by T0+106, but qmgr may reuse an old routing answer for 30 s more
    change = state.changes["c1"]
    assert change.status == "pending" and not named(found, "change_live")
    assert change.routing_cache.earliest == pytest.approx(T0 + 106, abs=1e-3)
    found += step(state, Tick(T0 + 106 + 30 + 0.1))
    live = named(found, "change_live")[0].data
    assert live["made_live_by"] == rewrite.key
    assert live["live_at"] == pytest.approx(T0 + 136, abs=1e-3)


def test_trivial_rewrite_rechecks_indexed_tables_every_10_seconds() -> None:
    b, facts = start(max_idle=100, transport_maps="hash:/t")
    b.message("qmgr", 21, "BBB").wait(1)
    b.change(facts, files=["/t.db"], tables=[table_edit("hash:/t", ["transport_maps"])])
    b.tick(T0 + 1 + 10 + 1 + 2.1)
    state, _found = engine(b)
    change = next(iter(state.changes.values()))
    rewriter = next(k for k in change.stale if "trivial-rewrite" in k)
    assert change.resolved[rewriter].at == pytest.approx(T0 + 12, abs=1e-6)


def test_qmgr_parameter_needs_reload_and_global_ones_are_advisory_for_qmgr() -> None:
    b, facts = start(max_idle=5)
    b.message("qmgr", 30, "CCC").change(facts, parameters=["qmgr_message_active_limit"])
    b.change(facts, parameters=["myorigin"])
    b.tick(T0 + 500)
    state, found = engine(b)
    first, second = named(found, "change_detected")
    assert first.data["needs"] == ["reload"]
    assert second.data["needs"] == []
    assert any("qmgr" in a for a in second.data["advisories"])
    assert state.changes["c2"].status == "live"


def test_master_cf_override_shields_a_service() -> None:
    svc = [
        s if s.daemon != "smtpd" else replace(s, overrides={"smtpd_banner": "x"})
        for s in default_services(10)
    ]
    facts = make_facts({}, services=svc)
    b = StreamBuilder(T0).snapshot(facts)
    b.session(5).change(facts, parameters=["smtpd_banner"])
    _, found = engine(b)
    assert named(found, "change_detected")[0].data["stale_processes"] == []
    assert named(found, "change_live")


def test_proc_poll_shows_exits_and_births_exactly() -> None:
    b, facts = start(max_idle=10)
    b.procs([("master", 1, T0 - 50), ("smtpd", 5, T0 - 3), ("qmgr", 2, T0 - 50)])
    b.wait(1).change(facts, parameters=["smtpd_banner"])
    b.wait(4).procs([("master", 1, T0 - 50), ("qmgr", 2, T0 - 50)])
    _state, found = engine(b)
    live = named(found, "change_live")[0]
    assert live.data["basis"] == "observed" and live.data["live_at"] == pytest.approx(
        T0 + 5, abs=1e-6
    )
    born = next(f for f in named(found, "process_started") if f.data["pid"] == 5)
    assert born.data["born_at"] == pytest.approx(T0 - 3, abs=1e-6) and born.data["born_exact"]


def test_unknown_pre_existing_processes_when_the_log_began_just_before() -> None:
    b, facts = start(max_idle=60)
    b.message("cleanup", 3, "DDD").wait(5).change(facts, parameters=["smtpd_banner"])
    b.tick(T0 + 30)
    state, found = engine(b)
    detected = named(found, "change_detected")[0].data
    assert detected["predicted_live_at"] == pytest.approx(T0 + 61, abs=1e-6)
    assert "smtpd[unseen]" in detected["stale_processes"]
    step(state, Tick(T0 + 63.5))
    assert state.changes["c1"].status == "live"


def test_an_inferred_exit_is_retracted_when_the_process_logs_again() -> None:
    b, _facts = start(max_idle=10)
    b.message("smtp", 44, "EEE").wait(14).message("smtp", 44, "FFF")
    state, found = engine(b)
    assert named(found, "process_exit_retracted")
    assert "postfix/smtp/44" in state.processes


def test_postscreen_and_pickup() -> None:
    svc = [*default_services(10), ServiceFacts("smtp", "inet", "postscreen", 10, 100, 1, 0, "")]
    facts = make_facts({}, services=svc)
    b = StreamBuilder(T0).snapshot(facts)
    b.log("postscreen_connect", "postscreen", 8).change(facts, parameters=["smtpd_banner"])
    b.change(facts, parameters=["receive_override_options"]).tick(T0 + 50)
    _, found = engine(b)
    first, second = named(found, "change_detected")
    assert first.data["needs"] == ["reload"]  # postscreen reads smtpd_banner, never exits
    pickup = next(a for a in second.data["affected"] if a["daemon"] == "pickup")
    assert pickup["mode"] == "restart"
    assert "pickup[unseen]" in second.data["stale_processes"]


def test_crash_and_kill_from_master_warnings() -> None:
    b, _ = start()
    b.message("cleanup", 3, "GGG").master(
        "child_exit_status", 1, child_pid="3", child_daemon="cleanup", status="1"
    )
    b.message("smtp", 4, "HHH").master(
        "child_killed", 1, child_pid="4", child_daemon="smtp", signal="9"
    )
    state, _ = engine(b)
    assert [(p.pid, p.exit_reason) for p in state.history] == [(3, "crash"), (4, "killed")]


def test_fold_is_pure_and_state_round_trips_through_json() -> None:
    b, facts = start(max_idle=10)
    b.session(5).change(facts, parameters=["smtpd_banner"])
    state, _ = engine(b)
    before = to_json(state)
    result = fold(state, Tick(T0 + 100))
    assert to_json(state) == before
    assert result.state.changes["c1"].status == "live"
    again = from_json(to_json(result.state))
    assert to_json(again) == to_json(result.state)


def test_with_proc_a_use_limit_exit_waits_for_proc_and_keeps_its_reason() -> None:
    b, facts = start(max_idle=100, max_use=2)
    b.procs([("smtpd", 9, T0 - 1)]).session(9).change(facts, parameters=["smtpd_banner"])
    b.wait(0.5).procs([("smtpd", 9, T0 - 1)]).session(9, duration=0.4)
    state, found = engine(b)
    assert not named(found, "process_exited") and state.processes["postfix/smtpd/9"].draining
    found = step(state, ProcessTableSeen(at=b.now + 0.2, processes=()))
    exit_ = named(found, "process_exited")[0].data
    assert (exit_["reason"], exit_["basis"]) == ("use_limit", "observed")
    assert named(found, "change_live")[0].data["live_at"] == pytest.approx(b.now + 0.2, abs=1e-6)


def test_pickup_idles_out_only_when_max_idle_is_shorter_than_its_wakeup() -> None:
    b, _ = start(max_idle=3)
    b.message("pickup", 12, "PPP").wait(3 + 1 + 2.1).tick()
    state, _ = engine(b)
    assert state.history and state.history[-1].exit_reason == "idle_timeout"
    b2, _ = start(max_idle=100)
    b2.message("pickup", 12, "PPP").wait(500).tick()
    state2, _ = engine(b2)
    assert "postfix/pickup/12" in state2.processes


def test_anvil_idles_out_after_the_last_smtpd_is_gone() -> None:
    b, _ = start(max_idle=10)
    b.log("anvil_statistics", "anvil", 50).session(5, duration=1)
    b.wait(10 + 1 + 2.1).tick()  # smtpd[5] inferred gone at T0+11.5 (latest 12)
    b.wait(62).tick()  # anvil: max(max_idle, anvil_rate_time_unit 60 s) later
    state, _ = engine(b)
    anvil = next(p for p in state.history if p.daemon == "anvil")
    smtpd = next(p for p in state.history if p.daemon == "smtpd")
    assert anvil.exit_reason == "idle_timeout"
    assert anvil.exited_at == pytest.approx((smtpd.exit_latest or 0) + 60 + 0.5, abs=1e-6)


def test_verbose_multi_server_counts_its_clients() -> None:
    b, _ = start(max_idle=10)
    b.log("verbose_connection_established", "trivial-rewrite", 60)
    b.log("verbose_connection_established", "trivial-rewrite", 60)
    b.wait(20).log("verbose_connection_closed", "trivial-rewrite", 60)
    b.wait(20).tick()
    state, _ = engine(b)
    assert "postfix/trivial-rewrite/60" in state.processes  # one client still connected
    b2 = StreamBuilder(b.now).log("verbose_connection_closed", "trivial-rewrite", 60)
    b2.wait(10 + 1 + 2.1).tick()
    run(state, b2.events)
    gone = state.history[-1]
    assert gone.key == "postfix/trivial-rewrite/60" and gone.exit_reason == "idle_timeout"
    assert gone.exited_at == pytest.approx(T0 + 40 + 10.5, abs=1e-6)


def test_volatile_verify_needs_reload_persistent_verify_does_not() -> None:
    b, facts = start(max_idle=10, address_verify_map="")
    b.change(facts, parameters=["address_verify_positive_expire_time"])
    volatile = named(engine(b)[1], "change_detected")[0].data
    b2, facts2 = start(max_idle=10, address_verify_map="btree:/var/lib/postfix/verify_cache")
    b2.change(facts2, parameters=["address_verify_positive_expire_time"])
    persistent = named(engine(b2)[1], "change_detected")[0].data
    assert volatile["needs"] == ["reload"] and persistent["needs"] == []


def test_a_new_pid_of_a_one_process_service_retires_the_old_one() -> None:
    b, _ = start(max_idle=10)
    b.message("qmgr", 30, "AAA").wait(50).master("master_started", 2).message("qmgr", 31, "BBB")
    b.message("pickup", 40, "CCC").wait(5).message("pickup", 41, "DDD")
    state, _ = engine(b)
    pickup = next(p for p in state.history if p.key == "postfix/pickup/40")
    assert pickup.exit_basis == "inferred" and "at most one process" in pickup.exit_note
    assert "postfix/pickup/41" in state.processes


def test_a_warning_before_the_first_connect_dates_the_birth() -> None:
    b, facts = start(max_idle=10)
    b.change(facts, parameters=["smtpd_banner"]).wait(5)
    b.log("diagnostic", "smtpd", 7, severity="warning", text="address not listed")
    b.log("session_connect", "smtpd", 7)
    state, _ = engine(b)
    assert state.processes["postfix/smtpd/7"].born_at == pytest.approx(T0 + 5, abs=1e-6)
    assert state.changes["c1"].stale == []


def test_master_cf_edit_reaches_processes_started_after_it_only_at_reload() -> None:
    b, facts = start(max_idle=100)
    b.change(facts, files=["master.cf"], services=["smtp/inet"])
    b.wait(5).log("session_connect", "smtpd", 8)  # born after the edit, before the reload
    b.wait(1).master("master_reloaded", 1).wait(5).tick()
    state, found = engine(b)
    assert state.changes["c1"].status == "pending"
    assert "postfix/smtpd/8" in state.changes["c1"].stale
    assert len(named(found, "change_detected")[0].data["needs_detail"]) == 1
