"""Forged log lines during a pending change, against a real Postfix and ``pfwatch watch``.

An idle smtpd holds the old configuration of an ``smtpd_banner`` edit. Lines that claim
it exited are appended to the maillog as any user able to write there could: one with
the stale smtpd's own pid, one with the pid of a live process that is not Postfix's.
With /proc visible, neither makes the change live: the change goes live only when /proc
shows the smtpd gone, both lines are reported as ``log_line_untrusted`` and counted in
``pfwatch_log_lines_untrusted_total``. A second watcher without /proc (``--no-proc``)
believes the forged exit, and its events say so: ``evidence: "log only"``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from watch_harness import Event, WatchProcess, metric

from pfwatch.instance.local import PostfixInstance

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

MAX_IDLE = 12


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def forge(inst: PostfixInstance, pid: int, text: str) -> None:
    """Append a line in the maillog's own format (time, host, tag), as a local user could."""
    lines = inst.maillog.read_text(encoding="utf-8").splitlines()
    model = next(line for line in reversed(lines) if "postfix/" in line)
    host = model[: model.index("postfix/")].split()[-1]
    if model[0].isdigit():  # RFC 3339 time stamps
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    else:  # classic syslog time stamps, local time
        stamp = time.strftime("%b %e %H:%M:%S")
    with inst.maillog.open("a", encoding="utf-8") as log:
        log.write(f"{stamp} {host} postfix/smtpd[{pid}]: {text}\n")


@pytest.mark.postfix_options(max_idle=MAX_IDLE)
def test_forged_exit_lines_never_make_a_change_live(
    postfix_instance: PostfixInstance, tmp_path: Path
) -> None:
    inst = postfix_instance
    proc_watch = WatchProcess(inst.config_dir, inst.maillog, tmp_path / "s1", tmp_path / "o1")
    log_only = WatchProcess(
        inst.config_dir, inst.maillog, tmp_path / "s2", tmp_path / "o2", extra=["--no-proc"]
    )
    try:
        proc_watch.wait_started()
        log_only.wait_started()
        inst.send_mail("alice@example.com", "bob@example.com")
        smtpd = proc_watch.wait_for(
            lambda e: e["event"] == "process_started" and e["daemon"] == "smtpd", what="smtpd"
        )
        pid = int(smtpd["pid"])
        inst.edit_main_cf({"smtpd_banner": "$myhostname ESMTP forged"})

        def banner(e: Event) -> bool:
            return e["event"] == "change_detected" and "smtpd_banner" in e["parameters"]

        change = proc_watch.wait_for(banner, what="change_detected")
        assert f"smtpd[{pid}]" in change["stale_processes"], change
        assert change["evidence"] == "log+proc"
        (banner_drift,) = [p for p in change["drift"]["parameters"] if p["name"] == "smtpd_banner"]
        assert banner_drift["new"] == "$myhostname ESMTP forged", banner_drift
        assert banner_drift["old"] != banner_drift["new"]
        log_only.wait_for(banner, what="change_detected without /proc")

        # -- the forgeries ----------------------------------------------------------
        forged_at = time.time()
        forge(inst, pid, "idle timeout -- exiting")
        forge(inst, os.getpid(), "idle timeout -- exiting")
        forge(
            inst, pid, "table hash:/etc/postfix/virtual(0,lock|fold_fix) has changed -- restarting"
        )

        contradicted = proc_watch.wait_for(
            lambda e: e["event"] == "log_line_untrusted" and e["reason"] == "exit_contradicted",
            timeout=10,
            what="the forged exit contradicted by /proc",
        )
        assert contradicted["pid"] == pid
        not_postfix = proc_watch.wait_for(
            lambda e: e["event"] == "log_line_untrusted" and e["reason"] == "pid_not_postfix",
            what="the line of a pid that is not Postfix's",
        )
        assert not_postfix["pid"] == os.getpid()
        assert alive(pid), "the stale smtpd must still run for this test to mean anything"
        early = [
            e
            for e in proc_watch.events()
            if e["event"] == "change_live" and e["change_id"] == change["change_id"]
        ]
        assert early == [], "a forged line made the change live while /proc shows smtpd"
        samples = proc_watch.metrics()
        untrusted = {
            reason: metric(samples, "pfwatch_log_lines_untrusted_total", reason=reason)
            for reason in ("exit_contradicted", "pid_not_postfix", "journal_writer")
        }
        assert untrusted == {"exit_contradicted": 1, "pid_not_postfix": 1, "journal_writer": 0}

        # the watcher without /proc believes the log, and says that is all it has
        believed = log_only.wait_for(
            lambda e: e["event"] == "change_live" and e["change_id"] == change["change_id"],
            what="change_live from the log alone",
        )
        assert believed["evidence"] == "log only"
        assert all(
            e.get("evidence") == "log only"
            for e in log_only.events()
            if e["event"].startswith(("change_", "process_", "postfix_"))
        )

        # -- the real exit ------------------------------------------------------------
        live = proc_watch.wait_for(
            lambda e: e["event"] == "change_live" and e["change_id"] == change["change_id"],
            timeout=MAX_IDLE + 15,
            what="change_live once smtpd really exits",
        )
        assert not alive(pid)
        exited = proc_watch.wait_for(
            lambda e: e["event"] == "process_exited" and int(e["pid"]) == pid, what="exit"
        )
        assert exited["ts"] >= change["ts"]
        gap = live_gap(live, forged_at)
        print(f"\nforged exit at +0 s; change_live after the real exit at +{gap:.1f} s")
        assert gap > 3
    finally:
        proc_watch.terminate()
        log_only.terminate()


def live_gap(live: Event, forged_at: float) -> float:
    return datetime.fromisoformat(live["live_at"].replace("Z", "+00:00")).timestamp() - forged_at
