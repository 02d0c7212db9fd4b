"""``pfwatch check`` against a real, private Postfix (pfwatch.testing fixture).

Every exit code (0/1/2/3), the monitoring-plugin line, ``--staged`` what-ifs, the no-state
fallbacks (mtime, git, log) and lint compared with the real ``postconf``. The instances
run with max_idle = 2 s and ipc_idle = 1 s so that edits go live within seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pfwatch.config.facts import facts_from_snapshot
from pfwatch.config.snapshot import build_snapshot, snapshot_to_json
from pfwatch.core.fold import fold
from pfwatch.core.state import EngineState, to_json
from pfwatch.events import ConfigSnapshotTaken
from pfwatch.instance.local import PostfixInstance
from pfwatch.lint import lint_snapshot
from pfwatch.store.sqlite import StateStore
from pfwatch.testing.cli import run_pfwatch
from pfwatch.testing.times import epoch_times

pytestmark = pytest.mark.postfix

FAST = {"max_idle": 2, "main_cf": {"ipc_idle": "1s"}}
PLUGIN_LINE = re.compile(
    r"^PFWATCH (OK|WARNING|CRITICAL|UNKNOWN) - [^|]+( \| ('[^']+'|[^ =']+)=[-0-9.U]+[a-zA-Z%]*"
    r"(;[^ ;]*){0,4})*( ('[^']+'|[^ =']+)=[-0-9.U]+[a-zA-Z%]*(;[^ ;]*){0,4})*$"
)


def pfwatch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the real entry point (argv, exit code, stdout) in-process."""
    result = run_pfwatch(*args)
    return result.exit_code, result.stdout


def check_json(
    capsys: pytest.CaptureFixture[str], pf: PostfixInstance, *extra: str
) -> tuple[int, dict[str, Any]]:
    code, out = pfwatch(capsys, "check", "--config-dir", str(pf.config_dir), "--json", *extra)
    return code, json.loads(out)


def settle(pf: PostfixInstance) -> None:
    """One delivered mail, then let every process that served it idle out."""
    pf.send_mail("sender@example.com", "rcpt@example.net")
    time.sleep(0.5)


def wait_until(predicate: Any, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def live_virtual_table(pf: PostfixInstance, capsys: pytest.CaptureFixture[str]) -> None:
    """A built virtual table, every process started after it, and check saying 0."""
    pf.write_file("virtual", "alias@example.net rcpt@example.net\n")
    pf.postmap("virtual")
    # wait=True: an smtpd from before the table existed holds a surrogate for it and
    # answers "Temporary lookup failure" until it exits (dict_surrogate.c)
    pf.reload(wait=True)
    settle(pf)
    assert wait_until(lambda: check_json(capsys, pf)[0] == 0, timeout=30), check_json(capsys, pf)


@pytest.mark.postfix_options(**FAST)
def test_exit_0_then_1_then_confirmed_0(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    pf = postfix_instance
    settle(pf)
    code, out = pfwatch(capsys, "check", "--config-dir", str(pf.config_dir), "--plugin")
    assert code == 0, out
    assert PLUGIN_LINE.match(out.splitlines()[0]), out
    assert out.startswith("PFWATCH OK - no pending edits")

    with pf.open_session():  # an smtpd that started before the edit and is busy
        pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP edited"})
        code, out = pfwatch(capsys, "check", "--config-dir", str(pf.config_dir), "--plugin")
        assert code == 1, out
        first = out.splitlines()[0]
        assert first.startswith("PFWATCH WARNING - 1 pending edit(s) go live by themselves")
        assert PLUGIN_LINE.match(first), first
        assert "pending=1;" in first
        code, report = check_json(capsys, pf)
        assert code == 1
        (pending,) = report["pending"]
        assert any(p.startswith("smtpd[") for p in pending["stale_processes"])
        assert pending["needs"] == []
        assert report["basis"] in ("mtime", "git")
    # the busy smtpd is free now: max_idle 2 s later it exits and the edit is live
    assert wait_until(lambda: check_json(capsys, pf)[0] == 0, timeout=30), check_json(capsys, pf)
    banner = pf.wait_ready()
    assert "ESMTP edited" in banner


@pytest.mark.postfix_options(**FAST)
def test_exit_2_for_master_cf_until_reload(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    pf = postfix_instance
    settle(pf)
    pf.write_file("master.cf", pf.master_cf.read_text() + "\nspare unix - - n - - error\n")
    code, out = pfwatch(capsys, "check", "--config-dir", str(pf.config_dir), "--plugin")
    assert code == 2, out
    assert out.startswith("PFWATCH CRITICAL - 1 pending edit(s) need reload")
    assert "needs_action=1;" in out
    pf.reload()
    assert wait_until(lambda: check_json(capsys, pf)[0] == 0, timeout=30), check_json(capsys, pf)


@pytest.mark.postfix_options(
    max_idle=2, main_cf={"ipc_idle": "1s", "virtual_alias_maps": "hash:$config_directory/virtual"}
)
def test_table_edit_without_postmap_is_2_and_postmap_makes_it_go_live(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    pf = postfix_instance
    live_virtual_table(pf, capsys)

    pf.write_file("virtual", "alias@example.net other@example.net\n")
    code, report = check_json(capsys, pf)
    assert code == 2, report
    codes = {f["code"] for f in report["lint"]}
    assert "table-stale" in codes
    assert any(t["freshness"] == "stale" for t in report["tables"])
    assert "postmap" in report["summary"] or "table" in report["summary"]

    pf.postmap("virtual")
    code, report = check_json(capsys, pf)
    assert code in (0, 1), report
    assert not any(f["code"] == "table-stale" for f in report["lint"])


def test_exit_3_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    code, out = pfwatch(capsys, "check", "--config-dir", str(missing), "--plugin")
    assert code == 3
    assert out.startswith("PFWATCH UNKNOWN - ")
    assert "nope" in out
    code, _ = pfwatch(capsys, "check", "--no-such-flag")
    assert code == 3  # click's usage error (2) must not escape
    code, out = pfwatch(capsys, "check", "--maillog", "x", "--journal", "--plugin")
    assert code == 3
    assert out.startswith("PFWATCH UNKNOWN - choose --maillog or --journal")
    state = tmp_path / "state"
    state.mkdir()
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "main.cf").write_text("myhostname = a.example\n")
    (conf / "master.cf").write_text("smtp inet n - n - - smtpd\n")
    code, out = pfwatch(
        capsys, "check", "--config-dir", str(conf), "--state-dir", str(state), "--plugin"
    )
    assert code == 3
    assert "no pfwatch state database" in out


def test_broken_main_cf_is_critical_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "main.cf").write_text(
        "myhostname = a.example\n this continuation has no start\n= value without a name\n"
    )
    (conf / "master.cf").write_text("smtp inet n - n - - smtpd\n")
    code, out = pfwatch(capsys, "check", "--config-dir", str(conf), "--plugin")
    assert code == 2, out
    assert out.startswith("PFWATCH CRITICAL - configuration error: ")
    assert "main.cf:" in out


@pytest.mark.postfix_options(**FAST)
def test_staged_main_cf_and_table(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pf = postfix_instance
    settle(pf)
    candidate = tmp_path / "main.cf"
    candidate.write_text(
        pf.main_cf.read_text().replace(
            "smtpd_banner = $myhostname ESMTP", "smtpd_banner = $myhostname ESMTP staged"
        )
    )
    code, report = check_json(capsys, pf, "--staged", str(candidate))
    assert code == 0, report  # nothing is pending in the live configuration
    staged = report["staged"]
    assert any("smtpd_banner" in line for line in staged["diff"])
    change = staged["change"]
    assert "smtpd_banner" in change["parameters"]  # and postscreen_greet_banner via $smtpd_banner
    assert change["needs"] == []
    assert change["status"] in ("pending", "live")
    assert pf.main_cf.read_text().count("staged") == 0  # the live file is untouched

    master = tmp_path / "stage" / "master.cf"
    master.parent.mkdir()
    master.write_text(pf.master_cf.read_text() + "\nspare unix - - n - - error\n")
    code, report = check_json(capsys, pf, "--staged", str(master.parent))
    assert code == 0, report
    assert any("spare" in line for line in report["staged"]["diff"])
    assert report["staged"]["change"]["needs"] == ["reload"]

    wrong = tmp_path / "notes.txt"
    wrong.write_text("hello\n")
    code, out = pfwatch(
        capsys, "check", "--config-dir", str(pf.config_dir), "--staged", str(wrong), "--plugin"
    )
    assert code == 3
    assert "neither main.cf, master.cf nor a table source" in out


@pytest.mark.postfix_options(
    max_idle=2, main_cf={"ipc_idle": "1s", "virtual_alias_maps": "hash:$config_directory/virtual"}
)
def test_staged_hash_table_needs_postmap(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pf = postfix_instance
    live_virtual_table(pf, capsys)
    candidate = tmp_path / "virtual"
    candidate.write_text("alias@example.net changed@example.net\nnew@example.net x@example.net\n")
    code, report = check_json(capsys, pf, "--staged", str(candidate))
    assert code == 0, report  # the what-if does not change the verdict on the live files
    staged = report["staged"]
    assert any("new@example.net" in line for line in staged["diff"]), staged["diff"]
    assert staged["change"]["needs"] == ["postmap"]
    assert staged["after_postmap"] is not None
    assert staged["after_postmap"]["needs"] == []


@pytest.mark.postfix_options(**FAST)
def test_fallback_bases_mtime_log_and_git(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the etckeeper-style basis cannot be shown")
    pf = postfix_instance
    settle(pf)
    conf = str(pf.config_dir)
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": "2001-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2001-01-01T00:00:00Z",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example",
    }
    for argv in (["init", "-q"], ["add", "main.cf", "master.cf"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *argv], cwd=conf, env=env, check=True)
    with pf.open_session():
        pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP git"})
        code, report = check_json(capsys, pf)
        assert code == 1
        assert report["basis"] == "git"
        assert "smtpd_banner" in report["pending"][0]["parameters"]
        assert "*" not in report["pending"][0]["parameters"]
        assert any("git:" in line for line in report["basis_detail"])

        code, report = check_json(capsys, pf, "--no-git", "--no-log")
        assert code == 1
        assert report["basis"] == "mtime"
        assert report["pending"][0]["parameters"] == ["*"]
        assert not any(line.startswith("log:") for line in report["basis_detail"])
        assert any("/proc" in line for line in report["basis_detail"])

        code, report = check_json(capsys, pf, "--no-git", "--maillog", str(pf.maillog))
        assert any(line.startswith("log:") for line in report["basis_detail"])
        assert report["pending"][0]["predicted_live_at"] is None  # busy: no prediction yet
    # the session ended: once its end is in the log, the idle exit can be predicted

    def predicted_or_live() -> bool:
        code, report = check_json(capsys, pf, "--no-git", "--maillog", str(pf.maillog))
        return code == 0 or report["pending"][0]["predicted_live_at"] is not None

    assert wait_until(predicted_or_live, timeout=10, step=0.2)


def _postconf_warnings(config_dir: Path) -> set[tuple[str, str]]:
    done = subprocess.run(
        ["postconf", "-c", str(config_dir), "-n"], capture_output=True, text=True, check=False
    )
    found: set[tuple[str, str]] = set()
    for line in done.stderr.splitlines():
        match = re.search(r"(unused|undefined) parameter: ([A-Za-z0-9_]+)", line)
        if match:
            found.add((match.group(1), match.group(2)))
    return found


def test_lint_agrees_with_real_postconf(tmp_path: Path) -> None:
    if shutil.which("postconf") is None:
        pytest.skip("postconf not installed (apt-get install postfix)")
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "main.cf").write_text(
        "compatibility_level = 3.6\n"
        "my_ref = hello\n"
        "smtpd_banner = $myhostname $my_ref\n"
        "smtpd_bannr = typo\n"
        "lonely = x\n"
        "relay_domains = $undefined_thing\n"
        "smtpd_reject_footer = $client_address raw\n"
        "smtpd_restriction_classes = strict\n"
        "strict = reject\n"
        "slow_destination_rate_delay = 1s\n"
        "slow_time_limit = 5\n"
        "corp_server_host = ldap.example\n"
        "virtual_alias_maps = ldap:corp\n"
    )
    (conf / "master.cf").write_text(
        "smtp inet n - n - - smtpd\n"
        "slow unix - - n - - smtp\n"
        "  -o smtp_helo_name=$svc_helo\n"
        "  -o svc_helo=hi\n"
        "  -o typo_svc=1\n"
    )
    expected = _postconf_warnings(conf)
    assert ("unused", "smtpd_bannr") in expected  # the real postconf's rule, not ours
    findings = lint_snapshot(build_snapshot(str(conf)), check_daemons=False)
    ours = {
        (f.code.split("-")[0], f.subject)
        for f in findings
        if f.code in ("unused-parameter", "undefined-parameter")
    }
    assert ours == expected
    typo = next(f for f in findings if f.subject == "smtpd_bannr")
    assert typo.suggestion == "smtpd_banner"


# -- pfwatch wait ------------------------------------------------------------------------

LONG_LIVED = {
    "master",
    "qmgr",
    "pickup",
    "tlsmgr",
    "anvil",
    "scache",
    "verify",
    "postlogd",
    "proxymap",
    "showq",
}


@pytest.mark.postfix_options(**FAST)
def test_wait_returns_when_really_live(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    pf = postfix_instance
    settle(pf)
    edited = pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP waited"})
    started = time.monotonic()
    code, out = pfwatch(capsys, "wait", "--config-dir", str(pf.config_dir), "--timeout", "60")
    elapsed = time.monotonic() - started
    assert code == 0, out
    assert "every edit is live" in out
    # the truth from /proc: no short-lived daemon that reads main.cf is older than the edit
    old = [p for p in pf.processes() if p.started_at < edited - 0.05 and p.name not in LONG_LIVED]
    assert old == [], (old, out)
    assert elapsed < 30


@pytest.mark.postfix_options(**FAST)
def test_wait_exits_2_when_an_action_is_needed_and_0_once_taken(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    pf = postfix_instance
    settle(pf)
    pf.write_file("master.cf", pf.master_cf.read_text() + "\nspare unix - - n - - error\n")
    code, out = pfwatch(capsys, "wait", "--config-dir", str(pf.config_dir), "--timeout", "30")
    assert code == 2, out
    assert "run: reload" in out
    timer = threading.Timer(1.5, pf.reload)
    timer.start()
    try:
        code, out = pfwatch(
            capsys,
            "wait",
            "--config-dir",
            str(pf.config_dir),
            "--timeout",
            "30",
            "--wait-for-actions",
        )
    finally:
        timer.join()
    assert code == 0, out


@pytest.mark.postfix_options(**FAST)
def test_wait_times_out_with_1_while_a_session_keeps_an_old_smtpd(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    pf = postfix_instance
    settle(pf)
    with pf.open_session():
        pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP blocked"})
        started = time.monotonic()
        code, out = pfwatch(capsys, "wait", "--config-dir", str(pf.config_dir), "--timeout", "2")
        elapsed = time.monotonic() - started
    assert code == 1, out
    assert "timed out" in out
    assert "smtpd[" in out
    assert 2.0 <= elapsed < 15


@pytest.mark.postfix_options(**FAST)
def test_state_dir_basis(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The sidecar's store, written as ``pfwatch watch`` writes it (snapshot + engine)."""
    pf = postfix_instance
    settle(pf)
    now = time.time()
    snap = build_snapshot(str(pf.config_dir), taken_at=now)
    state = EngineState()
    state = step_all(state, [ConfigSnapshotTaken(now, facts_from_snapshot(snap))])
    store = StateStore.open(tmp_path / "state")
    store.commit(
        engine_state=json.loads(to_json(state)),
        snapshot=(now, snap.digest, json.dumps(snapshot_to_json(snap), sort_keys=True)),
        now=now,
    )
    store.close()
    state_dir = str(tmp_path / "state")
    code, report = check_json(capsys, pf, "--state-dir", state_dir)
    assert code == 0, report
    assert report["basis"] == "state-dir"
    with pf.open_session():
        pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP stored"})
        code, report = check_json(capsys, pf, "--state-dir", state_dir)
        assert code == 1, report
        assert report["basis"] == "state-dir"
        assert any("not recorded" in line for line in report["basis_detail"])
        assert "smtpd_banner" in report["pending"][0]["parameters"]
    assert wait_until(lambda: check_json(capsys, pf, "--state-dir", state_dir)[0] == 0, timeout=30)


def step_all(state: EngineState, events: list[Any]) -> EngineState:
    for event in events:
        state = fold(state, event).state
    return state


@pytest.mark.postfix_options(**FAST)
def test_plugin_age_thresholds(
    postfix_instance: PostfixInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    pf = postfix_instance
    settle(pf)
    conf = str(pf.config_dir)
    with pf.open_session():
        pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP aged"})
        code, out = pfwatch(capsys, "check", "--config-dir", conf, "--plugin", "-w", "3600")
        assert code == 0, out  # pending, but younger than the warning age
        assert "oldest_pending_age=" in out and ";3600;" in out
        time.sleep(1.1)
        code, out = pfwatch(capsys, "check", "--config-dir", conf, "--plugin", "-c", "1")
        assert code == 2, out
        assert out.startswith("PFWATCH CRITICAL - ")
        assert "(critical 1)" in out
    code, out = pfwatch(capsys, "check", "--config-dir", conf, "--plugin", "-w", "20:10")
    assert code == 3
    assert out.startswith("PFWATCH UNKNOWN - --warning '20:10'")


@pytest.mark.parametrize("value", ["$short_idle", "5s"])
def test_prediction_uses_the_service_max_idle_from_o_override(
    postfix_factory: Any, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """Global max_idle 100 s, smtpd ``-o max_idle=$short_idle`` (5 s): Postfix expands
    the ``-o`` value, so the stale smtpd exits 5 s after its session, and check's
    prediction must say so (it said ~100 s when the value was not expanded)."""
    pf = postfix_factory(
        max_idle=100,
        main_cf={"short_idle": "5s", "ipc_idle": "1s"},
        service_options={"smtpd": {"max_idle": value}},
    )
    with pf.open_session():
        smtpds = [p.pid for p in pf.processes() if p.name == "smtpd"]  # + start-up probe's
        time.sleep(1.1)
        pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP edited"})
        time.sleep(1.1)
    closed = time.time()
    code, report = check_json(capsys, pf)
    assert code == 1, report
    (pending,) = report["pending"]
    smtpds = [pid for pid in smtpds if Path(f"/proc/{pid}").exists()]
    assert smtpds
    assert {f"smtpd[{pid}]" for pid in smtpds} <= set(pending["stale_processes"])
    exited = max(pf.wait_for_exit(pid, timeout=20) for pid in smtpds)
    assert exited - closed == pytest.approx(5.0, abs=1.0)
    # never before the truth, and within the log's 1 s resolution after it
    predicted = epoch_times(pending)["predicted_live_at"]
    assert exited - 0.1 <= predicted <= exited + 1.5, (pending, exited)
