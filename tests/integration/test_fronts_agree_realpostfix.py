"""Differential suite: every front gives the same answer for the same edit on a real Postfix.

One private Postfix per scenario; during it run, side by side:

- ``pfwatch watch`` (a child process, events to a file),
- ``wait``'s engine (:class:`pfwatch.changewindow.livewatch.LiveSession`, polled in a
  thread as ``pfwatch wait`` polls it),
- ``pfwatch check --json`` (a child process) mid-way, once the stale processes' sessions
  ended, and after the edit is live,
- ``pfwatch wait`` itself (a child process started right after the edit, following the
  watcher's state directory and the log, ``--wait-for-actions``),
- ``pfwatch explain --json`` on the recorded maillog afterwards (log only),

and /proc polled every ~50 ms by the test (the truth). Asserted: they name the same stale
processes (check: the ones wait's engine named just before and just after it ran) and the
same needed actions; their predicted live times agree within the log's 1 s resolution
(and with the truth when no traffic decides it); their "live" times agree within it and
none is before the /proc truth; the ``wait`` command exits 0 once the truth says live,
never before. No scenario has a known gap: any failing check fails the test. Each
scenario prints a ``FRONTS-METRIC {json}`` line with the measured spreads (run with
``-s`` to collect them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from watch_harness import WatchProcess

from pfwatch.changewindow.livewatch import LiveSession
from pfwatch.changewindow.precheck import CheckRequest
from pfwatch.core.predict import change_prediction
from pfwatch.core.state import Change
from pfwatch.instance.local import PostfixInstance
from pfwatch.knowledge.caches import reply_reuse_seconds

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

RESOLUTION = 1.0
"""Syslog timestamps have whole seconds."""
TRUTH_SLACK = 0.05
"""Clock reads around a /proc listing."""
LOG_DELAY = 3.5
"""The engine's log-delay margin (2 s) plus the log's resolution, and some."""
WAIT_LAG = 3.0
"""The ``wait`` command's exit after the truth: its 0.2 s poll, a /proc poll, its exit."""
UPDATE_STEP = 1.0
"""The smallest move of a prediction that watch publishes (core/confirm.py)."""


def seconds(value: Any) -> float | None:
    """A time from any machine output: POSIX seconds or an RFC 3339 string."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _zombie(pid: int) -> bool:
    """An exited process its parent has not reaped yet (it no longer runs)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


class TruthPoller(threading.Thread):
    """Exit bounds of the instance's processes from /proc, polled every 50 ms.

    A process was alive when a poll that listed it began (``seen``) and gone when a poll
    that missed it ended (``gone``): its exit lies between the two.
    """

    def __init__(self, pf: PostfixInstance) -> None:
        super().__init__(daemon=True)
        self.pf = pf
        self.seen: dict[int, float] = {}
        self.gone: dict[int, float | None] = {}
        self.names: dict[int, str] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.poll()

    def poll(self) -> None:
        began = time.time()
        procs = self.pf.processes()
        ended = time.time()
        alive = {p.pid for p in procs if not _zombie(p.pid)}
        with self.lock:
            for p in procs:
                if p.pid not in alive:
                    continue
                self.gone.setdefault(p.pid, None)
                self.names[p.pid] = p.name
                self.seen[p.pid] = began
            for pid, gone in self.gone.items():
                if gone is None and pid not in alive:
                    self.gone[pid] = ended

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            self.poll()

    def alive(self, names: tuple[str, ...]) -> dict[int, str]:
        self.poll()
        with self.lock:
            return {
                p: self.names[p]
                for p, g in self.gone.items()
                if g is None and self.names[p] in names
            }

    def bounds(self, pid: int) -> tuple[float, float | None]:
        """(last seen alive, first seen gone) of ``pid``."""
        with self.lock:
            return self.seen[pid], self.gone.get(pid)


class WaitFront(threading.Thread):
    """``pfwatch wait``'s engine, polled every 0.3 s until stopped."""

    def __init__(self, pf: PostfixInstance) -> None:
        super().__init__(daemon=True)
        request = CheckRequest(
            config_dir=pf.config_dir, now=time.time(), maillog=(str(pf.maillog),), use_git=False
        )
        self.session = LiveSession.start(request)
        self.lock = threading.RLock()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.3):
            with self.lock:
                self.session.poll()

    def change(self) -> Change:
        with self.lock:
            changes = sorted(self.session.state.changes.values(), key=lambda c: c.at)
            assert changes, "wait's engine saw no change"
            return changes[-1]

    def predicted(self) -> float | None:
        with self.lock:
            change = self.change()
            value = change_prediction(self.session.state, change)["predicted_live_at"]
            return None if value is None else float(value)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.session.close()


class WaitCommand(threading.Thread):
    """``pfwatch wait`` itself, a child process; records when and how it returned."""

    def __init__(self, pf: PostfixInstance, state_dir: Path) -> None:
        super().__init__(daemon=True)
        argv = [sys.executable, "-m", "pfwatch", "wait", "--config-dir", str(pf.config_dir),
                "--maillog", str(pf.maillog), "--state-dir", str(state_dir), "--no-git",
                "--wait-for-actions", "--timeout", "150", "--interval", "0.2"]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.output = ""
        self.returned_at: float | None = None
        self.start()

    def run(self) -> None:
        self.output = self.proc.communicate()[0]
        self.returned_at = time.time()

    def result(self, timeout: float) -> tuple[int | None, float | None, str]:
        self.join(timeout)
        if self.is_alive():
            self.proc.kill()
            self.join(5)
        return self.proc.returncode, self.returned_at, self.output


def pfwatch_json(*args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "pfwatch", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1, 2), done.stderr
    return json.loads(done.stdout)


def _label(key: str) -> str:
    """``postfix/smtpd/123`` as ``smtpd[123]``."""
    _instance, daemon, pid = key.rsplit("/", 2)
    return f"{daemon}[{pid}]"


def _minus(times: dict[str, float | None], truth: float) -> dict[str, float | None]:
    return {k: None if v is None else round(v - truth, 3) for k, v in times.items()}


def labels(items: list[Any]) -> set[str]:
    """Process labels with a pid (``smtpd[123]``); allowances for unseen processes
    (``trivial-rewrite[?]``) are compared apart."""
    found = {item["label"] if isinstance(item, dict) else str(item) for item in items}
    return {label for label in found if not label.endswith("[?]")}


@dataclass
class Scenario:
    name: str
    edit: Callable[[PostfixInstance], float]
    changed: str
    """``--changed-at`` WHAT for explain (a file or parameter names)."""
    daemons: tuple[str, ...] = ("smtpd",)
    """Daemons whose processes alive at the edit are stale (the /proc truth)."""
    action: Callable[[PostfixInstance], float] | None = None
    needs: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    exits: bool = True
    """Whether the edit is live only once the stale processes exited."""
    before: Callable[[PostfixInstance], object] | None = None
    """Traffic before the edit (a mail keeps trivial-rewrite and cleanup alive)."""
    traffic: bool = False
    """After the mid-way check, one session at a time until the stale processes are gone
    (a use limit, not time, decides: no front can predict when the traffic comes)."""
    cache_window: float = 0.0
    """A routing edit is live that long after the old trivial-rewrite exits: clients may
    reuse its answers (src/global/resolve_clnt.c:198-205)."""
    git: bool = False
    """Keep the configuration in git (committed before Postfix started), so check's basis
    is ``git``, exact about main.cf parameters; by modification time (``--no-git``) which
    parameters changed is unknown and every process older than the edit that reads main.cf
    is named (cleanup and smtp too, where they are alive)."""
    log_names_services: bool = True
    """False for a master.cf edit: the log never shows master.cf's entries (master builds
    each child's argv from them, and only /proc shows argv), so explain, given only the
    edit's time, cannot tell which service changed and names no stale process. Asserted
    as such: explain names none, every other front the same ones."""


def _banner(pf: PostfixInstance) -> float:
    return pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP fronts"})


def _master(pf: PostfixInstance) -> float:
    text = pf.master_cf.read_text().replace(" smtpd -v", " smtpd -v -o smtpd_banner=edited", 1)
    pf.write_file("master.cf", text)
    return time.time()


def _access_source(pf: PostfixInstance) -> float:
    time.sleep(1.1)  # the source must be visibly newer than the .db
    pf.write_file("access", "10.9.9.7 REJECT\n")
    return time.time()


def _postmap(pf: PostfixInstance) -> float:
    return pf.postmap("access")


def _reload(pf: PostfixInstance) -> float:
    return pf.reload()


def _mail(pf: PostfixInstance) -> object:
    return pf.send_mail("sender@example.com", "rcpt@example.net")


def _mailbox_domains(pf: PostfixInstance) -> float:
    return pf.edit_main_cf({"virtual_mailbox_domains": "mbox.example other.example"})


def _git_commit(config_dir: Path, before: float) -> None:
    """The configuration committed at ``before`` (etckeeper's /etc)."""
    stamp = f"@{int(before)} +0000"
    env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp, "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example", "PATH": "/usr/bin:/bin"}  # fmt: skip
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "before"]):
        subprocess.run(["git", *argv], cwd=config_dir, env=env, check=True)


def _sessions_until_gone(pf: PostfixInstance, truth: TruthPoller, stale: dict[int, str]) -> None:
    for _ in range(8):
        if not set(stale) & set(truth.alive(tuple(set(stale.values())))):
            return
        with pf.open_session():
            time.sleep(0.2)
        time.sleep(0.3)


SCENARIOS = [
    Scenario(
        "o-override-name",
        _banner,
        "smtpd_banner",
        options={
            "max_idle": 100,
            "main_cf": {"short_idle": "6s", "ipc_idle": "1s"},
            "service_options": {"smtpd": {"max_idle": "$short_idle"}},
        },
    ),
    Scenario(
        "per-service-max-idle",
        _banner,
        "smtpd_banner",
        options={
            "max_idle": 100,
            "main_cf": {"ipc_idle": "1s"},
            "service_options": {"smtpd": {"max_idle": "6s", "max_use": "50"}},
        },
    ),
    Scenario(
        "master-cf-reload",
        _master,
        "master.cf",
        action=_reload,
        needs=("reload",),
        options={"max_idle": 3},
        log_names_services=False,
    ),
    Scenario(
        "hash-source-without-postmap",
        _access_source,
        "access",
        action=_postmap,
        needs=("postmap",),
        options={
            "max_idle": 3,
            "main_cf": {
                "smtpd_client_restrictions": "check_client_access hash:$config_directory/access"
            },
        },
        exits=False,
    ),
    Scenario(
        "max-use-exit",
        _banner,
        "smtpd_banner",
        options={
            "max_idle": 100,
            "main_cf": {"ipc_idle": "1s"},
            "service_options": {"smtpd": {"max_use": "3"}},
        },
        traffic=True,
    ),
    Scenario(
        "routing-virtual-mailbox-domains",
        _mailbox_domains,
        "virtual_mailbox_domains",
        daemons=("trivial-rewrite", "smtpd"),
        before=_mail,
        options={
            "max_idle": 3,
            "main_cf": {"ipc_idle": "1s", "virtual_mailbox_domains": "mbox.example"},
            # trivial-rewrite logs only with -v: otherwise the log has no line of it
            "verbose": ("smtpd", "trivial-rewrite"),
        },
        cache_window=reply_reuse_seconds(),
        git=True,
    ),
]


def _status_prediction(watch: WatchProcess, change_id: str) -> float | None:
    """The predicted live time of ``change_id`` in watch's /status, as of now."""
    for change in watch.get_json("/status")["pending_changes"]:
        if change["change_id"] == change_id and change["prediction"]:
            return seconds(change["prediction"]["predicted_live_at"])
    return None


def _watch_named(events: list[dict[str, Any]], change_id: str) -> set[str]:
    """Every process watch called stale for the change, up to its ``change_live``."""
    named: set[str] = set()
    for event in events:
        if event.get("change_id") != change_id:
            continue
        if event["event"] == "change_live":
            break
        if event["event"] in ("change_detected", "change_prediction_updated"):
            named |= labels(event.get("stale_processes", []))
    return named


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_fronts_agree(postfix_factory: Any, tmp_path: Path, scenario: Scenario) -> None:
    pf: PostfixInstance = postfix_factory(**scenario.options)
    if scenario.name.startswith("hash"):
        pf.write_file("access", "10.9.9.9 REJECT\n")
        pf.postmap("access")
        pf.reload(wait=True)
    if scenario.git:
        _git_commit(
            pf.config_dir, min(p.started_at for p in pf.processes(include_master=True)) - 60
        )
    truth = TruthPoller(pf)
    truth.start()
    state_dir = tmp_path / "state"
    check_args = ("--config-dir", str(pf.config_dir), "--maillog", str(pf.maillog),
                  *(() if scenario.git else ("--no-git",)))  # fmt: skip
    watch = WatchProcess(pf.config_dir, pf.maillog, state_dir, tmp_path / "watch.out")
    waiter: WaitFront | None = None
    command: WaitCommand | None = None
    traffic_at: float | None = None
    try:
        watch.wait_started()
        waiter = WaitFront(pf)
        waiter.start()
        if scenario.before is not None:
            scenario.before(pf)
        # an smtpd busy across the edit: stale whatever the edit is
        session_mark = pf.log_offset()
        with pf.open_session():
            time.sleep(1.1)
            stale = truth.alive(scenario.daemons)
            edited_at = scenario.edit(pf)
            command = WaitCommand(pf, state_dir)
            time.sleep(1.5)
        # every front has seen the session end: it is logged, then read (0.2 s polls)
        pf.wait_for_log(r"postfix/smtpd\[\d+\]: disconnect from", since=session_mark)
        time.sleep(0.3)
        wait_predicted = waiter.predicted()
        wait_id = waiter.change().change_id
        wait_before = labels([_label(k) for k in waiter.change().stale])
        mid = pfwatch_json("check", *check_args)
        wait_after = labels([_label(k) for k in waiter.change().stale])
        detected = watch.wait_for(lambda e: e["event"] == "change_detected", 15, "change")
        # watch's current prediction, asked when check was: its events publish a move of
        # 1 s or more only (change_prediction_updated), so they may lag it by up to 1 s
        watch_now = _status_prediction(watch, detected["change_id"])
        if scenario.traffic:
            traffic_at = time.time()
            _sessions_until_gone(pf, truth, stale)
        acted_at = scenario.action(pf) if scenario.action is not None else None
        live = watch.wait_for(lambda e: e["event"] == "change_live", 90, "change_live")
        deadline = time.monotonic() + 20
        while waiter.session.state.changes[wait_id].status != "live":
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        wait_change = waiter.session.state.changes[wait_id]
        waited = command.result(30)
        # a line well after the live time: only so does the log show that time passed
        # (a log-only front waits that long before it believes an exit it inferred)
        time.sleep(max(0.0, (seconds(live["live_at"]) or 0.0) + LOG_DELAY - time.time()))
        with pf.open_session():
            pass
        time.sleep(0.5)
        after = pfwatch_json("check", *check_args)
    finally:
        truth.stopping.set()
        if waiter is not None:
            waiter.stop()
        if command is not None and command.is_alive():
            command.proc.kill()
        watch.terminate()
    what = scenario.changed
    if what == "access":
        what = str(pf.config_dir / "access")
    changed = [f"{edited_at:.3f}={what}"]
    if acted_at is not None and scenario.needs == ("postmap",):
        changed.append(f"{acted_at:.3f}={what}.db")
    explained = pfwatch_json(
        "explain",
        str(pf.maillog),
        "--config-dir",
        str(pf.config_dir),
        *(f"--changed-at={item}" for item in changed),
    )

    stale_labels = {f"{name}[{pid}]" for pid, name in stale.items()}
    (mid_change,) = mid["pending"]
    explain_change = explained["changes"][0]
    named = {
        "watch": _watch_named(watch.events(), detected["change_id"]),
        "wait": labels([_label(k) for k in wait_change.stale]),
        "explain": labels(explain_change["stale_processes"]),
    }
    checked = labels(mid_change["stale_processes"] + mid_change["resolved_processes"])
    needs = {
        "watch": tuple(detected["needs"]),
        "check": tuple(mid_change["needs"]),
        "wait": tuple(n.action for n in wait_change.needs),
        "explain": tuple(n["action"] for n in explain_change["needs_detail"]),
    }
    # a table-checking smtpd reopens a rebuilt table instead of exiting: no exit to wait for
    exits = [truth.bounds(pid) for pid in stale] if scenario.exits else []
    assert all(gone is not None for _seen, gone in exits), exits
    # the edit was live once the last stale process was gone (and the action was taken);
    # a routing edit once clients can no longer reuse the old trivial-rewrite's answers
    acted = [acted_at] if acted_at else []
    window = scenario.cache_window
    truth_low = max([seen + window for seen, _gone in exits] + acted)
    truth_live = max([(gone or 0.0) + window for _seen, gone in exits] + acted)
    lives = {
        "watch": seconds(live["live_at"]),
        "wait": wait_change.live_at,
        "explain": seconds(explain_change["live_at"]),
    }
    predictions = {"check": seconds(mid_change["predicted_live_at"]), "wait": wait_predicted}
    published: float | None = None
    if not scenario.needs:
        events = watch.events()
        until = next(i for i, e in enumerate(events) if e["event"] == "change_live")
        updates = [
            e
            for e in events[:until]
            if e["event"] in ("change_detected", "change_prediction_updated")
            and (traffic_at is None or (seconds(e["ts"]) or 0.0) < traffic_at)
        ]
        predictions["watch"] = watch_now
        published = seconds(updates[-1]["predicted_live_at"])
    code, returned_at, wait_out = waited
    report = {
        "scenario": scenario.name,
        "stale_truth": sorted(stale_labels),
        "stale": {k: sorted(v) for k, v in named.items()},
        "stale_check_mid": sorted(checked),
        "needs": needs,
        "live_minus_truth": _minus(lives, truth_live),
        "predicted_minus_truth": _minus(predictions, truth_live),
        "published_minus_truth": None if published is None else round(published - truth_live, 3),
        "wait_command": {"exit": code, "returned_minus_truth": _minus(
            {"returned": returned_at}, truth_live)["returned"]},
        "truth_window": round(truth_live - truth_low, 3),
        "after_check_pending": [c["stale_processes"] for c in after["pending"]],
    }  # fmt: skip
    print("FRONTS-METRIC " + json.dumps(report, sort_keys=True))

    known = [v for v in lives.values() if v is not None]
    made = [v for v in predictions.values() if v is not None]
    expected_explain = named["watch"] if scenario.log_names_services else set()
    checks = {
        "stale_same": named["watch"] == named["wait"]
        and named["explain"] == expected_explain
        and stale_labels <= named["watch"],
        "check_stale_same": wait_before <= checked <= wait_after,
        "needs_same": set(needs.values()) == {scenario.needs},
        "live_same": len(known) == len(lives) and max(known) - min(known) <= RESOLUTION + 0.5,
        "live_not_before_truth": all(v >= truth_low - TRUTH_SLACK for v in known),
        "predicted_same": bool(scenario.needs)
        or (
            len(made) == len(predictions)
            and max(made) - min(made) <= RESOLUTION + 0.5
            and (scenario.traffic or all(abs(v - truth_live) <= RESOLUTION + 0.5 for v in made))
        ),
        "published_prediction_near": published is None
        or (watch_now is not None and abs(published - watch_now) < UPDATE_STEP + RESOLUTION),
        "wait_command_at_truth": code == 0
        and returned_at is not None
        and truth_low - TRUTH_SLACK <= returned_at <= truth_live + WAIT_LAG,
        "check_after_clear": after["pending"] == [],
    }
    failed = sorted(name for name, ok in checks.items() if not ok)
    assert not failed, (failed, report, wait_out)
