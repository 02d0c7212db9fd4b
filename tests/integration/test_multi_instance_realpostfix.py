"""End to end on a real ``postmulti`` host: ``watch``, ``check`` and ``explain`` follow
every instance, each with its own changes and processes.

:class:`pfwatch.testing.postmulti.PostmultiHost` runs the real ``postmulti -e init``,
``postmulti -I postfix-out -G mta -e create``, ``-e enable`` and ``-p start`` in a private
mount namespace (the host's /etc/postfix is not touched), on loopback ports. ``watch``
gets only the primary's configuration directory and finds ``postfix-out`` in its
``multi_instance_directories``. An edit of postfix-out's main.cf must be a change of
postfix-out only, held back by postfix-out's smtpd (its master's child in /proc), and go
live once that smtpd has exited (compared with /proc, polled here).
"""

from __future__ import annotations

import json
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from watch_harness import Event, WatchProcess, metric

from pfwatch.testing.postmulti import PostmultiHost

pytestmark = [pytest.mark.postfix, pytest.mark.slow]


def _at(event: Event, key: str) -> float:
    return datetime.fromisoformat(str(event[key]).replace("Z", "+00:00")).timestamp()


@pytest.fixture
def host() -> Iterator[PostmultiHost]:
    reason = PostmultiHost.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    # a short base: Postfix's unix socket paths must stay below 108 bytes
    base = Path(tempfile.mkdtemp(prefix="pfw-pm-"))
    base.chmod(0o755)
    try:
        with PostmultiHost(base, max_idle=3) as started:
            yield started
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _session(port: int) -> None:
    client = smtplib.SMTP("127.0.0.1", port, local_hostname="client.pfwatch.test", timeout=30)
    try:
        client.ehlo()
    finally:
        client.quit()


def _pfwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pfwatch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_watch_check_and_explain_follow_each_instance(host: PostmultiHost, tmp_path: Path) -> None:
    primary, out = host.instances
    listed = " ".join(host.postmulti_list())
    assert "postfix-out" in listed and "mta" in listed
    watch = WatchProcess(primary.config_dir, host.maillog, tmp_path / "state", tmp_path / "out")
    try:
        started = watch.wait_started()
        assert [i["instance"] for i in started["instances"]] == ["postfix", "postfix-out"]
        # an smtpd in each instance, idle after one session (max_idle 3 s)
        _session(primary.port)
        _session(out.port)
        for name in ("postfix", "postfix-out"):
            watch.wait_for(
                lambda e, n=name: (
                    e["event"] == "process_started"
                    and e["daemon"] == "smtpd"
                    and e.get("instance") == n
                ),
                what=f"smtpd of {name}",
            )
        out_smtpds = {pid for pid, n in out.children().items() if n == "smtpd"}
        primary_smtpds = {pid for pid, n in primary.children().items() if n == "smtpd"}
        assert out_smtpds and primary_smtpds

        edited = host.edit_main_cf(out, {"smtpd_banner": "$myhostname ESMTP pfwatch-out"})
        detected = watch.wait_for(
            lambda e: e["event"] == "change_detected" and "smtpd_banner" in e["parameters"],
            timeout=20,
            what="change_detected of the postfix-out edit",
        )
        seen_after = time.time() - edited
        assert detected["instance"] == "postfix-out"
        assert str(out.main_cf) in detected["files"]
        stale = {int(label.split("[")[1].rstrip("]")) for label in detected["stale_processes"]}
        assert stale, detected
        # the stale processes are postfix-out's (children of its master), not the primary's
        alive_stale = {pid for pid in stale if psutil.pid_exists(pid)}
        assert alive_stale <= out_smtpds | set(out.children())
        assert not stale & primary_smtpds

        # /proc truth: when the last stale process is gone (polled every 20 ms)
        gone_at = 0.0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not any(psutil.pid_exists(pid) for pid in stale):
                gone_at = time.time()
                break
            time.sleep(0.02)
        assert gone_at, f"stale processes {stale} still run"
        live = watch.wait_for(
            lambda e: e["event"] == "change_live" and e["change_id"] == detected["change_id"],
            timeout=20,
            what="change_live of the postfix-out edit",
        )
        assert live["instance"] == "postfix-out"
        lag = _at(live, "live_at") - gone_at
        print(f"change_detected {seen_after:.2f} s after the edit; live - /proc truth {lag:+.2f} s")
        assert -1.5 <= lag <= 3.0, (live, gone_at)
        others = [
            e
            for e in watch.events()
            if e["event"].startswith("change_") and e.get("instance") == "postfix"
        ]
        assert others == [], "the primary saw a change it did not have"

        samples = watch.metrics()
        for name in ("postfix", "postfix-out"):
            assert (
                metric(samples, "pfwatch_config_changes_pending", postfix_instance=name) is not None
            )
        status = watch.get_json("/status")
        assert [i["instance"] for i in status["instances"]] == ["postfix", "postfix-out"]
    finally:
        assert watch.terminate() == 0, watch.tail()

    checked = _pfwatch(
        "check",
        "--config-dir",
        str(primary.config_dir),
        "--maillog",
        str(host.maillog),
        "--no-git",
        "--json",
    )
    assert checked.returncode in (0, 1), checked.stdout + checked.stderr
    doc = json.loads(checked.stdout)
    assert [i["instance"] for i in doc["instances"]] == ["postfix", "postfix-out"]
    assert doc["instances"][1]["config_dir"] == str(out.config_dir)

    # wait: an edit of postfix-out while its new smtpd idles; wait returns once it is live
    _session(out.port)
    deadline = time.monotonic() + 10
    while not [n for n in out.children().values() if n == "smtpd"]:
        assert time.monotonic() < deadline, "no smtpd in postfix-out"
        time.sleep(0.05)
    host.edit_main_cf(out, {"smtpd_helo_required": "yes"})
    waited = _pfwatch(
        "wait",
        "--config-dir",
        str(primary.config_dir),
        "--maillog",
        str(host.maillog),
        "--no-git",
        "--timeout",
        "30",
    )
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "[postfix-out]" in waited.stdout, waited.stdout
    assert not [n for n in out.children().values() if n == "smtpd"], "live with smtpd running"

    explained = _pfwatch("explain", str(host.maillog), "--json")
    assert explained.returncode == 0, explained.stderr
    report = json.loads(explained.stdout)
    instances = {row["instance"] for row in report["processes"]}
    assert {"postfix", "postfix-out"} <= instances
    text = _pfwatch("explain", str(host.maillog))
    assert "postfix-out: Postfix started" in text.stdout, text.stdout
    assert "postfix-out/smtpd[" in text.stdout, text.stdout
