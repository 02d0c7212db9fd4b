"""End to end: ``pfwatch watch`` as a subprocess beside a private, real Postfix.

The service gets the instance's configuration directory, its maillog (written by
postlogd), a temporary state directory and a free port. The test edits main.cf by
rename-into-place and by in-place write, adds and rebuilds a table with postmap, reloads
and sends mail, then asserts the JSON event stream (change_detected with needs and
predicted_live_at, change_live only after the stale processes are gone from /proc,
postfix_reloaded, process_started/process_exited), /metrics and /status; finally a clean
stop, an edit while pfwatch is down, and a restart that reports that edit (stamped with
the file's mtime) and nothing it had reported before.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from watch_harness import Event, WatchProcess, metric

from pfwatch.instance.local import PostfixInstance

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

LABEL = re.compile(r"^(?P<daemon>[\w-]+)\[(?P<pid>\d+)\]$")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stale_pids(event: Event) -> list[int]:
    found = [LABEL.match(str(label)) for label in event["stale_processes"]]
    return [int(m["pid"]) for m in found if m is not None]


def change_for(parameter: str) -> object:
    return lambda e: e["event"] == "change_detected" and parameter in e["parameters"]


def start_watch(inst: PostfixInstance, tmp_path: Path, name: str = "out.jsonl") -> WatchProcess:
    watch = WatchProcess(inst.config_dir, inst.maillog, tmp_path / "state", tmp_path / name)
    try:
        watch.wait_started()
    except BaseException:
        watch.kill()
        raise
    return watch


def test_watch_reports_edits_going_live(postfix_instance: PostfixInstance, tmp_path: Path) -> None:
    inst = postfix_instance
    watch = start_watch(inst, tmp_path)
    try:
        # -- an idle smtpd exists; a rename-into-place edit of a parameter it reads ---------
        inst.send_mail("alice@example.com", "bob@example.com")
        smtpd = watch.wait_for(
            lambda e: e["event"] == "process_started" and e["daemon"] == "smtpd", what="smtpd"
        )
        inst.edit_main_cf({"smtpd_banner": "$myhostname ESMTP pfwatch-one"})
        first = watch.wait_for(change_for("smtpd_banner"), what="change_detected smtpd_banner")
        assert str(inst.main_cf) in first["files"]
        assert first["needs"] == []
        stale = stale_pids(first)
        if alive(int(smtpd["pid"])):
            assert int(smtpd["pid"]) in stale, first
        if stale:
            assert first["predicted_live_at"] is not None, first
        live = watch.wait_for(
            lambda e: e["event"] == "change_live" and e["change_id"] == first["change_id"],
            timeout=20,
            what="change_live of the banner edit",
        )
        assert not [pid for pid in stale if alive(pid)], "live claimed while stale pids run"
        assert live["live_at"] >= first["ts"]
        exits = {
            int(e["pid"]) for e in watch.events() if e["event"] == "process_exited" and "pid" in e
        }
        assert set(stale) <= exits

        # -- an in-place write ----------------------------------------------------------
        inst.edit_main_cf({"smtpd_helo_required": "yes"}, in_place=True)
        second = watch.wait_for(change_for("smtpd_helo_required"), what="in-place edit")
        assert second["change_id"] != first["change_id"]

        # -- a table: referenced, then edited without postmap, then rebuilt -------------
        inst.write_file("virtual", "postmaster@example.com root\n")
        inst.postmap("virtual")
        inst.edit_main_cf({"virtual_alias_maps": "hash:$config_directory/virtual"})
        watch.wait_for(change_for("virtual_alias_maps"), what="virtual_alias_maps")
        inst.write_file("virtual", "postmaster@example.com root\nabuse@example.com root\n")
        edited = watch.wait_for(
            lambda e: (
                e["event"] == "change_detected"
                and any("virtual" in t for t in e["tables"])
                and "virtual_alias_maps" not in e["parameters"]
            ),
            what="table source edit",
        )
        assert "postmap" in edited["needs"], edited
        assert edited["predicted_live_at"] is None  # never live by itself without postmap
        inst.postmap("virtual")
        watch.wait_for(
            lambda e: (
                e["event"] == "change_detected"
                and e["change_id"] != edited["change_id"]
                and any("virtual" in t for t in e["tables"])
                and e["ts"] >= edited["ts"]
            ),
            what="table rebuilt by postmap",
        )

        # -- reload, then new mail ------------------------------------------------------
        before = {p.pid for p in inst.processes()}
        inst.reload()
        watch.wait_for(lambda e: e["event"] == "postfix_reloaded", what="postfix_reloaded")
        watch.wait_for(
            lambda e: e["event"] == "process_exited" and e.get("reason") == "reload",
            what="an exit by reload",
        )
        inst.send_mail("alice@example.com", "bob@example.com")
        watch.wait_for(
            lambda e: (
                e["event"] == "process_started"
                and e["daemon"] == "smtpd"
                and int(e["pid"]) not in before
            ),
            what="a new smtpd after the reload",
        )

        # -- /metrics and /status -------------------------------------------------------
        # Everything pending now goes live by itself (postmap ran, Postfix reloaded); some
        # changes may still wait out a documented cache lifetime after the reload.
        time.sleep(1.5)
        for _attempt in range(3):  # a change may go live between the two requests
            status = watch.get_json("/status")
            samples = watch.metrics()
            pending = status["pending_changes"]
            if metric(samples, "pfwatch_config_changes_pending") == len(pending):
                break
        assert metric(samples, "pfwatch_config_changes_pending") == len(pending)
        counts = Counter(e["event"] for e in watch.events())
        for change in pending:
            assert change["needs"] == [], change["change_id"]
            assert change["prediction"]["predicted_live_at"] is not None, change["change_id"]
        if pending:
            until = metric(samples, "pfwatch_config_change_seconds_until_live")
            assert until is not None and 0 <= until < 120
        assert metric(samples, "pfwatch_up") == 1
        assert metric(samples, "pfwatch_source_up", source="maillog") == 1
        assert metric(samples, "pfwatch_state_ok") == 1
        assert metric(samples, "pfwatch_postfix_reloads_total") == counts["postfix_reloaded"]
        assert (
            metric(samples, "pfwatch_events_emitted_total", event="change_detected")
            == counts["change_detected"]
            >= 5
        )
        assert metric(samples, "pfwatch_config_changes_pending_action", action="postmap") == 0
        assert (metric(samples, "pfwatch_log_lines_read_total", source="maillog") or 0) > 10
        reload_at = metric(samples, "pfwatch_postfix_last_reload_timestamp_seconds")
        assert reload_at is not None and abs(reload_at - time.time()) < 120
        assert {p["daemon"] for p in status["processes"]} >= {"master", "qmgr", "pickup"}
        assert watch.get_json("/healthz")["ok"] is True
    finally:
        assert watch.terminate() == 0, watch.tail()

    # -- an edit while pfwatch is down, then a restart on the same state ----------------
    reported = {e["event_id"] for e in watch.events()}
    inst.edit_main_cf({"smtpd_banner": "$myhostname ESMTP pfwatch-two"})
    edited_at = inst.main_cf.stat().st_mtime
    time.sleep(0.2)
    again = start_watch(inst, tmp_path, "out2.jsonl")
    try:
        down = again.wait_for(change_for("smtpd_banner"), what="edit made while down")
        assert abs(_posix(down["ts"]) - edited_at) < 0.01, (down["ts"], edited_at)
        time.sleep(1.5)
        repeated = [e for e in again.events() if e["event_id"] in reported]
        assert repeated == []
    finally:
        assert again.terminate() == 0, again.tail()


def _posix(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
