"""Real-Postfix acceptance of the lifecycle engine: predictions and "live" claims vs /proc.

Each test starts a private Postfix (short max_idle), drives client traffic, edits the
configuration at a random moment, and feeds two engines from the instance's maillog
(through the maillog classifier): one from the log alone, one from the log plus /proc
polls. The truth comes from /proc, polled by the test every 0.1 s: the processes of the
affected daemons alive at the edit, and the moment the last of them was gone.

Asserted: "live" is never claimed while a stale process still exists; the claim comes
within 2 s of the truth with /proc (log only: within the documented margin plus the log's
1 s timestamp resolution); the predicted exit of the last stale process, made once its
last session ended, is within 1 s of the real one. Measured errors are printed as
``LIFECYCLE-METRIC {json}`` lines (run with ``-s`` to collect them).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest

from pfwatch.changewindow.whatif import changed_event
from pfwatch.config.facts import facts_from_snapshot
from pfwatch.config.snapshot import Snapshot, build_snapshot
from pfwatch.core import predict
from pfwatch.core.fold import step
from pfwatch.core.state import EngineState, Settings
from pfwatch.events import (
    ConfigChanged,
    ConfigSnapshotTaken,
    Event,
    Finding,
    ProcessInfo,
    ProcessTableSeen,
    Tick,
)
from pfwatch.instance.local import PostfixInstance
from pfwatch.knowledge.caches import reply_reuse_seconds
from pfwatch.maillog.reader import LogClassifier

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

MARGIN = 2.0
POLL = 0.1
_POLLERS: list[TruthPoller] = []


@pytest.fixture(autouse=True)
def _stop_pollers() -> Any:
    yield
    while _POLLERS:
        _POLLERS.pop().stopping.set()


@dataclass
class Engine:
    """One engine fed by the harness; ``claims`` maps change id -> (wall time, finding)."""

    name: str
    state: EngineState
    findings: list[Finding] = field(default_factory=list)
    claims: dict[str, tuple[float, Finding]] = field(default_factory=dict)

    def feed(self, event: Event) -> None:
        found = step(self.state, event)
        self.findings.extend(found)
        for finding in found:
            if finding.name == "change_live":
                self.claims.setdefault(str(finding.data["change_id"]), (time.time(), finding))


@dataclass
class Truth:
    name: str
    started_at: float
    gone_at: float | None = None
    seen_at: float = 0.0
    """Start of the last listing that still showed the process: it was alive then."""


class TruthPoller(threading.Thread):
    """Polls the instance's processes every 50 ms: the truth the engines are judged by."""

    def __init__(self, pf: PostfixInstance) -> None:
        super().__init__(daemon=True)
        self.pf = pf
        self.lock = threading.Lock()
        self.truth: dict[int, Truth] = {}
        self.stopping = threading.Event()
        self.poll()

    def poll(self) -> None:
        began = time.time()  # a listing through `docker exec` takes a while
        procs = self.pf.processes(include_master=True)
        now = time.time()
        alive = {p.pid for p in procs}
        with self.lock:
            for p in procs:
                self.truth.setdefault(p.pid, Truth(p.name, p.started_at)).seen_at = began
            for pid, row in self.truth.items():
                if row.gone_at is None and pid not in alive:
                    row.gone_at = now

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            self.poll()

    def alive(self) -> dict[int, Truth]:
        self.poll()
        with self.lock:
            return {pid: t for pid, t in self.truth.items() if t.gone_at is None}


class Harness:
    """Reads the instance's maillog and /proc; feeds a log-only and a log+/proc engine."""

    def __init__(self, pf: PostfixInstance) -> None:
        self.pf = pf
        self.classifier = LogClassifier(reference_time=time.time())
        self.offset = 0
        self.partial = b""
        settings = {"margin": MARGIN, "max_idle": float(pf.max_idle)}
        self.log_only = Engine("log", EngineState(settings=Settings(**settings)))
        self.with_proc = Engine("log+proc", EngineState(settings=Settings(**settings)))
        self.poller = TruthPoller(pf)
        self.poller.start()
        _POLLERS.append(self.poller)
        self.truth = self.poller.truth
        self.snapshot: Snapshot = build_snapshot(str(pf.config_dir))
        baseline = ConfigSnapshotTaken(at=time.time(), facts=facts_from_snapshot(self.snapshot))
        for engine in self.engines:
            engine.feed(baseline)
        self.pump()

    @property
    def engines(self) -> tuple[Engine, Engine]:
        return self.log_only, self.with_proc

    def pump(self, proc: bool = True) -> None:
        procs = self.pf.processes(include_master=True)
        with self.pf.maillog.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            event = self.classifier.feed(line)
            if event is not None:
                for engine in self.engines:
                    engine.feed(event)
        now = time.time()
        if proc:
            table = ProcessTableSeen(
                at=now,
                processes=tuple(
                    ProcessInfo(
                        pid=p.pid,
                        daemon=p.name,
                        service=p.service,
                        instance="postfix",
                        started_at=p.started_at,
                    )
                    for p in procs
                ),
            )
            self.with_proc.feed(table)
        for engine in self.engines:
            engine.feed(Tick(at=now))

    def wait(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            self.pump()
            time.sleep(POLL)

    def change(self, change_id: str, at: float) -> tuple[ConfigChanged, dict[int, Truth]]:
        """Diff the configuration now against the last snapshot and feed the change."""
        alive = self.poller.alive()
        self.pump()
        new = build_snapshot(str(self.pf.config_dir), self.snapshot)
        event = changed_event(self.snapshot, new, at, change_id)
        self.snapshot = new
        for engine in self.engines:
            engine.feed(event)
        return event, alive

    def traffic(self, count: int, gap: float = 0.2) -> None:
        """Send mail from a thread while the engines keep being fed."""
        sender = threading.Thread(target=traffic, args=(self.pf, count, gap))
        sender.start()
        while sender.is_alive():
            self.pump()
            time.sleep(POLL)
        sender.join()

    def run_until_live(self, change_id: str, timeout: float) -> None:
        end = time.time() + timeout
        while time.time() < end:
            self.pump()
            if all(change_id in e.claims for e in self.engines):
                return
            time.sleep(POLL)

    def predicted(self, engine: Engine, change_id: str) -> float | None:
        change = engine.state.changes[change_id]
        if change.status == "live":
            return change.live_at
        value = predict.change_prediction(engine.state, change)["predicted_live_at"]
        return float(value) if value is not None else None


def traffic(pf: PostfixInstance, count: int, gap: float = 0.2) -> None:
    for i in range(count):
        pf.send_mail("sender@example.com", f"rcpt{i}@example.net")
        time.sleep(gap)


def check_claims(
    h: Harness,
    change_id: str,
    stale: dict[int, Truth],
    daemons: set[str],
    changed_at: float,
    prediction: dict[str, float | None],
    cache_window: float = 0.0,
) -> dict[str, Any]:
    """Assert the acceptance rules for one change; return the measured errors.

    ``cache_window``: for a routing change, trivial-rewrite's clients may reuse an old
    answer that long after the old trivial-rewrite is gone (resolve_clnt.c:198-205), so
    the truth of "fully live" is its real exit plus the window."""
    truth_stale = {pid: t for pid, t in stale.items() if t.name in daemons}
    gone = [t.gone_at for t in truth_stale.values()]
    assert all(g is not None for g in gone), f"stale processes never exited: {truth_stale}"
    truth_live = max([changed_at, *(g for g in gone if g is not None)])
    rewriter_gone = [
        t.gone_at for t in truth_stale.values() if t.name == "trivial-rewrite" and t.gone_at
    ]
    if cache_window:
        truth_live = max(truth_live, max(rewriter_gone, default=changed_at) + cache_window)
    metrics: dict[str, Any] = {
        "change": change_id,
        "truth_live": truth_live,
        "stale": sorted(f"{t.name}[{p}]" for p, t in truth_stale.items()),
    }
    for engine in h.engines:
        assert change_id in engine.claims, f"{engine.name}: never claimed live"
        claimed_wall, finding = engine.claims[change_id]
        for pid, row in truth_stale.items():
            # premature for certain only if a listing begun after the claim still showed it
            assert row.gone_at is not None and row.seen_at <= claimed_wall + POLL, (
                f"{engine.name} claimed live at {claimed_wall:.2f} while {row.name}[{pid}] "
                f"was still listed at {row.seen_at:.2f} (gone by {row.gone_at})"
            )
        latency = claimed_wall - truth_live
        # with /proc: within 2 s. Log only: the latest possible exit (1 s stamps) plus the
        # log-delay margin, plus up to 1 s for this harness's polling under shared CPUs
        allowed = 2.0 if engine is h.with_proc else MARGIN + 1.0 + 1.0
        assert latency <= allowed, f"{engine.name}: claim {latency:.2f}s after the truth"
        metrics[engine.name] = {
            "claim_latency": round(latency, 3),
            "live_at_error": round(float(finding.data["live_at"]) - truth_live, 3),
            "prediction_error": None
            if prediction.get(engine.name) is None
            else round(float(prediction[engine.name] or 0) - truth_live, 3),
            "basis": finding.data["basis"],
            "made_live_by": finding.data["made_live_by"],
        }
    print("LIFECYCLE-METRIC " + json.dumps(metrics))
    return metrics


def edit_and_confirm(
    h: Harness,
    change_id: str,
    edit: Any,
    daemons: set[str],
    *,
    traffic_after: int = 0,
    timeout: float = 40.0,
    cache_window: float = 0.0,
) -> dict[str, Any]:
    """Random pause, edit, optional traffic, predict after the last session, confirm."""
    time.sleep(random.uniform(0.0, 1.5))
    changed_at = edit()
    event, alive = h.change(change_id, changed_at)
    if traffic_after:
        h.traffic(traffic_after)
    h.wait(0.5)  # the last session has ended: predict now
    prediction = {e.name: h.predicted(e, change_id) for e in h.engines}
    h.run_until_live(change_id, timeout)
    h.wait(POLL * 3)
    return check_claims(h, change_id, alive, daemons, event.at, prediction, cache_window)


def assert_prediction_close(
    metrics: dict[str, Any], engine: str = "log", evidence_lag: float = 0.0
) -> None:
    """Within 1 s of the real exit; later by at most ``evidence_lag`` on top of that."""
    error = metrics[engine]["prediction_error"]
    assert error is not None and -(1.0 + POLL) <= error <= 1.0 + POLL + evidence_lag, metrics


_QMGR_ACTIVE = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ postfix/qmgr\[\d+\]: \w+: from=")
_DELIVERY = re.compile(
    r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ postfix/(?:qmgr|local|virtual|smtp|lmtp|error)"
    r"\[\d+\]: \w+: "
)


def delivery_lag(pf: PostfixInstance) -> float:
    """Seconds from qmgr's last ``from=`` (its address resolving) to the last delivery line.

    The engine counts the delivery agents' and qmgr's later lines as possible
    trivial-rewrite contacts (local(8) resolves forwarded addresses itself,
    src/local/resolve.c), so its prediction is deliberately no earlier than the last of
    them plus ipc_idle: on a loaded machine a slow delivery makes it that much later
    than an exit decided by qmgr's own last request."""
    active = last = None
    for line in pf.maillog.read_text(errors="replace").splitlines():
        if found := _QMGR_ACTIVE.match(line):
            active = found.group(1)
        if found := _DELIVERY.match(line):
            last = found.group(1)
    if active is None or last is None:
        return 0.0
    year = time.localtime().tm_year
    stamp = [time.mktime(time.strptime(f"{year} {s}", "%Y %b %d %H:%M:%S")) for s in (active, last)]
    return max(0.0, stamp[1] - stamp[0])


@pytest.mark.postfix_options(max_idle=3, verbose=())
def test_parameter_read_by_smtpd(postfix_instance: PostfixInstance) -> None:
    h = Harness(postfix_instance)
    h.traffic(random.randint(1, 3))
    h.wait(0.3)
    metrics = edit_and_confirm(
        h,
        "smtpd-banner",
        lambda: h.pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP pfwatch-edit"}),
        {"smtpd"},
    )
    affected = {a.daemon for a in h.log_only.state.changes["smtpd-banner"].impacts}
    assert affected == {"smtpd"}
    assert_prediction_close(metrics)


@pytest.mark.postfix_options(max_idle=3)
def test_parameter_read_only_by_trivial_rewrite(postfix_instance: PostfixInstance) -> None:
    h = Harness(postfix_instance)
    h.traffic(random.randint(1, 3))
    h.wait(0.3)
    metrics = edit_and_confirm(
        h,
        "vad",
        lambda: h.pf.edit_main_cf({"virtual_alias_domains": "alias.example"}),
        {"trivial-rewrite", "smtpd"},
        timeout=80.0,
        cache_window=reply_reuse_seconds(),
    )
    change = h.log_only.state.changes["vad"]
    modes = {a.daemon: a.mode for a in change.impacts}
    assert modes["trivial-rewrite"] == "restart" and "cleanup" not in modes
    # fully live 30 s after the old trivial-rewrite, whose exit decided it
    assert change.routing_cache.latest == change.live_at
    assert change.made_live_by.split("/")[1] == "trivial-rewrite"
    assert_prediction_close(metrics, evidence_lag=delivery_lag(h.pf))


@pytest.mark.postfix_options(max_idle=3, verbose=())
def test_pcre_header_checks_read_only_by_cleanup(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    pf.write_file("header_checks.pcre", "/^X-Nothing:/ IGNORE\n")
    pf.edit_main_cf({"header_checks": "pcre:$config_directory/header_checks.pcre"})
    pf.reload()
    time.sleep(0.5)
    h = Harness(pf)
    h.traffic(random.randint(1, 3))
    h.wait(0.3)
    metrics = edit_and_confirm(
        h,
        "pcre",
        lambda: (pf.write_file("header_checks.pcre", "/^X-Other:/ IGNORE\n"), time.time())[1],
        {"cleanup"},
    )
    modes = {a.daemon: a.mode for a in h.log_only.state.changes["pcre"].impacts}
    assert modes == {"cleanup": "restart"}
    assert_prediction_close(metrics)


def _with_access_table(pf: PostfixInstance) -> None:
    pf.write_file("access", "10.9.9.9 REJECT\n")
    pf.postmap("access")
    pf.edit_main_cf(
        {"smtpd_client_restrictions": "check_client_access hash:$config_directory/access"}
    )
    pf.reload()
    time.sleep(0.5)


@pytest.mark.postfix_options(max_idle=3)
def test_hash_table_rebuilt_with_postmap(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    _with_access_table(pf)
    h = Harness(pf)
    h.traffic(2)
    h.wait(0.3)

    rebuild_began: list[int] = []  # maillog offset when the rebuild began

    def rebuild() -> float:
        # Postfix compares the table's st_mtime in whole seconds (src/util/dict.c:583-609):
        # a rebuild in the same second as the build a process opened goes unnoticed by it.
        # pfwatch does not model that corner yet, so rebuild in a later second.
        built = int((pf.config_dir / "access.db").stat().st_mtime)
        time.sleep(max(0.0, built + 1.05 - time.time()))
        pf.write_file("access", "10.9.9.8 REJECT\n")
        rebuild_began.append(pf.log_offset())
        return pf.postmap("access")

    since = pf.log_offset()
    edit_and_confirm(h, "access", rebuild, set(), traffic_after=2)
    change = h.log_only.state.changes["access"]
    assert {a.mode for a in change.impacts} == {"table_check"}
    assert all(not e.state.changes["access"].needs for e in h.engines)
    # the behaviour behind "live at once": no process that logged before the rebuild began
    # served again after it (judged from the log: /proc start times are only as exact as
    # the kernel's whole-second boot time)
    before = set(re.findall(r"smtpd\[(\d+)\]", pf.log_text(since)[: rebuild_began[0] - since]))
    after = pf.log_text(rebuild_began[0])
    served = set(re.findall(r"smtpd\[(\d+)\]: connect from", after))
    assert served
    assert not served & before, (served, before)


@pytest.mark.postfix_options(max_idle=3)
def test_hash_table_source_without_postmap_is_never_live(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    _with_access_table(pf)
    h = Harness(pf)
    h.traffic(1)
    time.sleep(1.1)  # the source must be visibly newer than the .db
    pf.write_file("access", "10.9.9.7 REJECT\n")
    h.change("no-postmap", time.time())
    h.traffic(2)
    h.wait(3 * pf.max_idle + MARGIN + 3)
    for engine in h.engines:
        change = engine.state.changes["no-postmap"]
        assert change.status == "needs_action", engine.name
        assert "no-postmap" not in engine.claims
        assert [n.action for n in change.needs] == ["postmap"]
    pf.postmap("access")
    h.change("postmap", time.time())
    h.run_until_live("postmap", 15)
    for engine in h.engines:
        assert {"no-postmap", "postmap"} <= set(engine.claims), engine.name


@pytest.mark.postfix_options(max_idle=3)
def test_master_cf_edit_needs_reload(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    h = Harness(pf)
    h.traffic(1)
    h.wait(0.3)
    text = pf.master_cf.read_text().replace(" smtpd -v", " smtpd -v -o smtpd_banner=edited", 1)
    pf.write_file("master.cf", text)
    h.change("master", time.time())
    h.wait(2 * pf.max_idle + MARGIN + 2)
    for engine in h.engines:
        change = engine.state.changes["master"]
        assert change.status == "needs_action" and "master" not in engine.claims
    with pf.open_session():  # a session in flight at the reload finishes first
        at_reload = h.poller.alive()  # the truth: what runs the old master.cf entry
        reload_at = pf.reload()
        h.wait(1.0)
        early = [(e.name, e.claims["master"][1].data) for e in h.engines if "master" in e.claims]
        assert not early, (early, [(p.pid, p.started_at) for p in pf.processes()], reload_at)
    h.run_until_live("master", 15)
    check_claims(h, "master", at_reload, {"smtpd"}, reload_at, {})


@pytest.mark.postfix_options(max_idle=3)
def test_inet_interfaces_needs_stop_and_start(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    h = Harness(pf)
    h.traffic(1)
    pf.edit_main_cf({"inet_interfaces": "loopback-only"})
    h.change("inet", time.time())
    pf.reload()
    h.wait(2 * pf.max_idle + MARGIN + 2)
    for engine in h.engines:
        change = engine.state.changes["inet"]
        assert "restart" in [n.action for n in change.needs if n.satisfied_at is None]
        assert "inet" not in engine.claims
    assert "to change inet_interfaces, stop and start Postfix" in pf.log_text()
    pf.stop()
    pf.start()
    h.run_until_live("inet", 15)
    assert all("inet" in e.claims for e in h.engines)


@pytest.mark.postfix_options(max_idle=30, max_use=3, verbose=())
def test_max_use_exit_under_load(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    h = Harness(pf)
    h.traffic(1, gap=0.1)
    h.wait(0.3)
    metrics = edit_and_confirm(
        h,
        "use",
        lambda: h.pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP use"}),
        {"smtpd"},
        traffic_after=4,
        timeout=20,
    )
    reasons = {p.exit_reason for p in h.log_only.state.history if p.daemon == "smtpd"}
    assert "use_limit" in reasons
    assert metrics["log"]["claim_latency"] < pf.max_idle  # not an idle exit
    still = [
        p
        for p in psutil.process_iter(["name"])
        if p.info["name"] == "smtpd"
        and p.pid in h.truth
        and h.truth[p.pid].started_at < h.log_only.state.changes["use"].at
    ]
    assert not still
