"""Crash test: ``kill -9`` of ``pfwatch watch`` at random moments loses and repeats nothing.

A real Postfix runs with mail traffic; a writer thread appends numbered smtpd session
lines to its maillog (one fake pid per session, so each must give exactly one
``process_started``), and an editor thread renames a new main.cf into place every
~0.7 s, each adding a parameter of its own (so each must appear in exactly one
``change_detected``, whether pfwatch saw the edit live or at start-up after a crash).
pfwatch runs with ``--events-file`` and is killed with SIGKILL at a random moment
(sometimes before it finished starting), then restarted on the same state, for 20
rounds by default; a last run is stopped cleanly once the writers stopped.

The proof counts raw lines, no deduplication: every line of the events file is whole
JSON, no ``event_id`` occurs on two lines, every session pid has exactly one
``process_started`` line, every edited parameter exactly one ``change_detected`` line.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from watch_harness import WatchProcess

from pfwatch.instance.local import PostfixInstance

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

ROUNDS = int(os.environ.get("PFWATCH_CRASH_ROUNDS", "20"))
"""Kills per run of the test (PFWATCH_CRASH_ROUNDS=100 for a long proof)."""
FIRST_FAKE_PID = 3_900_000
"""Above any pid the kernel hands out here (pid_max is at most 4194304), below 2**22."""


class Traffic:
    """Background writers: session lines, main.cf edits, real mail."""

    def __init__(self, inst: PostfixInstance, seed: int) -> None:
        self.inst = inst
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.pids: list[int] = []
        self.parameters: list[str] = []
        self.mails = 0
        self.mail_errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._sessions, daemon=True),
            threading.Thread(target=self._edits, daemon=True),
            threading.Thread(target=self._mail, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)

    def _sessions(self) -> None:
        pid = FIRST_FAKE_PID
        fd = os.open(self.inst.maillog, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while not self.stop.is_set():
                stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
                tag = f"{stamp} crashtest postfix/smtpd[{pid}]:"
                lines = (
                    f"{tag} connect from client.example[192.0.2.7]\n"
                    f"{tag} disconnect from client.example[192.0.2.7] ehlo=1 quit=1 commands=2\n"
                )
                os.write(fd, lines.encode())
                self.pids.append(pid)
                pid += 1
                time.sleep(self.random.uniform(0.01, 0.08))
        finally:
            os.close(fd)

    def _edits(self) -> None:
        number = 0
        while not self.stop.wait(self.random.uniform(0.4, 1.0)):
            number += 1
            name = f"pfwatch_crash_{number}"
            self.inst.edit_main_cf({name: str(number)})
            self.parameters.append(name)
            if number % 3 == 0:
                # a Postfix program starting re-reads a main.cf younger than about 2 s
                # until it stops changing (src/util/dict.c:449-466): edits without a
                # pause would keep every new smtpd from starting, and the mail waiting
                self.stop.wait(3.0)

    def _mail(self) -> None:
        while not self.stop.wait(self.random.uniform(0.5, 1.5)):
            try:
                self.inst.send_mail("load@example.com", "sink@example.com")
                self.mails += 1
            except OSError as exc:
                self.mail_errors.append(f"{type(exc).__name__}: {exc}")


def runs_started(watch: WatchProcess) -> int:
    """How many runs got as far as ``watch_started``."""
    return sum(1 for e in watch.events() if e["event"] == "watch_started")


def wait_for_run(watch: WatchProcess, before: int, timeout: float = 30) -> None:
    """Wait until this run wrote its ``watch_started`` (``before`` runs did so earlier)."""
    deadline = time.monotonic() + timeout
    while runs_started(watch) <= before:
        assert watch.proc.poll() is None, watch.tail()
        assert time.monotonic() < deadline, watch.tail()
        time.sleep(0.05)


def test_kill_9_loses_and_repeats_nothing(
    postfix_instance: PostfixInstance, tmp_path: Path
) -> None:
    inst = postfix_instance
    seed = int(os.environ.get("PFWATCH_CRASH_SEED", random.randrange(1 << 30)))
    chooser = random.Random(seed)
    state, events_file = tmp_path / "state", tmp_path / "events.jsonl"

    def spawn(round_no: int) -> WatchProcess:
        return WatchProcess(
            inst.config_dir,
            inst.maillog,
            state,
            tmp_path / f"stdout-{round_no}.txt",
            events_file=events_file,
        )

    watch = spawn(0)
    try:
        watch.wait_started()  # the first start must see the log from its end onwards
    except BaseException:
        watch.kill()
        raise
    before = 0
    traffic = Traffic(inst, seed)
    traffic.start()
    kills: list[float] = []
    try:
        for round_no in range(1, ROUNDS + 1):
            if round_no > 1 and chooser.random() < 0.25:
                moment = chooser.uniform(0.2, 2.0)  # somewhere in start-up
                time.sleep(moment)
                kills.append(-round(moment, 2))
            else:
                wait_for_run(watch, before)
                moment = chooser.uniform(0.05, 1.5)  # while running
                time.sleep(moment)
                kills.append(round(moment, 2))
            watch.kill()
            before = runs_started(watch)
            watch = spawn(round_no)
    except BaseException:
        watch.kill()
        raise
    finally:
        traffic.finish()
    try:
        # the last start catches up on the log written across every kill: allow for load
        watch.wait_started(timeout=60)
        want_pids = set(traffic.pids)
        want_params = set(traffic.parameters)

        def complete() -> bool:
            events = watch.events()
            started = {e["pid"] for e in events if e["event"] == "process_started"}
            changed = {
                p for e in events if e["event"] == "change_detected" for p in e["parameters"]
            }
            return want_pids <= started and want_params <= changed

        deadline = time.monotonic() + 30
        while not complete() and time.monotonic() < deadline:
            time.sleep(0.2)
    except BaseException as exc:
        watch.kill()  # the failure itself is reported, not a SIGTERM that came too early
        exc.add_note(f"seed={seed} kills={kills} (rerun with PFWATCH_CRASH_SEED={seed})")
        raise
    assert watch.terminate() == 0, watch.tail()

    context = f"seed={seed} kills={kills} (rerun with PFWATCH_CRASH_SEED={seed})"
    raw = events_file.read_text(encoding="utf-8").splitlines()
    reconciled = sum(
        (tmp_path / f"stdout-{n}.txt").read_text().count("events_file_reconciled")
        for n in range(ROUNDS + 1)
    )
    print(
        f"CRASH-SUMMARY {context} lines={len(raw)} sessions={len(traffic.pids)} "
        f"edits={len(traffic.parameters)} mails={traffic.mails} reconciled_runs={reconciled} "
        f"mail_errors={traffic.mail_errors[:3]}"
    )
    records = [json.loads(line) for line in raw]  # a torn line would raise here
    ids = Counter(r["event_id"] for r in records)
    assert [i for i, n in ids.items() if n > 1] == [], context

    starts = Counter(
        int(r["pid"])
        for r in records
        if r["event"] == "process_started" and int(r["pid"]) >= FIRST_FAKE_PID
    )
    assert set(starts) == set(traffic.pids), context
    assert {pid: n for pid, n in starts.items() if n != 1} == {}, context

    changes = Counter(
        p for r in records if r["event"] == "change_detected" for p in r["parameters"]
    )
    assert set(traffic.parameters) <= set(changes), context
    assert {p: n for p, n in changes.items() if p in traffic.parameters and n != 1} == {}, context
    runs = Counter(r["event"] for r in records)["watch_started"]
    assert 2 <= runs <= ROUNDS + 1, context  # a run killed while starting emits none
    assert len(traffic.pids) > 50 and len(traffic.parameters) >= 5 and traffic.mails > 0
