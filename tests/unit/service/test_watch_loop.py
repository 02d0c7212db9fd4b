"""The watch service in-process on temporary files (no Postfix, no /proc): faults become
events and the service keeps running; a restart repeats nothing; bad state databases."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pfwatch.errors import StateError, UsageError
from pfwatch.events import from_rfc3339
from pfwatch.instance.local import free_port
from pfwatch.service.loop import WatchService
from pfwatch.settings import Settings
from pfwatch.testing.clock import FakeClock
from pfwatch.testing.watch_thread import WatchThread, append, syslog_line

MASTER = "smtp      inet  n       -       y       -       -       smtpd\n"
Event = dict[str, Any]


FAKE_JOURNALCTL = Path(__file__).resolve().parents[1] / "sources" / "fake_journalctl"


class Running(WatchThread):
    """The service on the files of the ``files`` fixture (``etc/``, ``maillog``)."""

    def __init__(
        self,
        tmp_path: Path,
        state_dir: Path | None = None,
        *,
        journal: bool = False,
        clock: FakeClock | None = None,
    ) -> None:
        self.conf = tmp_path / "etc"
        self.log = tmp_path / "maillog"
        settings = Settings(
            config_dir=self.conf,
            maillog=None if journal else self.log,
            journal=journal,
            state_dir=state_dir or tmp_path / "state",
            listen_host="127.0.0.1",
            listen_port=free_port(),
            debounce=0.05,
            log_format="json",
        )
        super().__init__(settings, clock=clock, journalctl=str(FAKE_JOURNALCTL))


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Path]:
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "main.cf").write_text("smtpd_banner = one\n")
    (conf / "master.cf").write_text(MASTER)
    (tmp_path / "maillog").write_text("")
    yield tmp_path


def line(pid: int, text: str) -> str:
    return syslog_line("postfix", pid, text)


def test_the_service_reads_the_time_from_its_clock(files: Path) -> None:
    clock = FakeClock(1_800_000_000.5)
    run = Running(files, clock=clock)
    started = run.wait(lambda e: e["event"] == "watch_started")
    run.stop()
    assert from_rfc3339(started["ts"]) == 1_800_000_000.5


def test_log_vanishing_and_coming_back(files: Path) -> None:
    run = Running(files)
    try:
        append(run.log, line(4242, "connect from a.example[192.0.2.1]"))
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 4242)
        run.log.unlink()
        down = run.wait(lambda e: e["event"] == "source_unavailable")
        assert down["source"] == "maillog" and str(run.log) in down["message"]
        status, body = run.healthz()
        assert status == 503 and body["sources"]["maillog"]["up"] is False
        append(run.log, line(4243, "connect from b.example[192.0.2.2]"))
        run.wait(lambda e: e["event"] == "source_recovered" and e["source"] == "maillog")
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 4243)
        assert run.healthz()[0] == 200
    finally:
        run.stop()


def test_config_edits_and_a_main_cf_replaced_by_a_directory(files: Path) -> None:
    run = Running(files)
    main = run.conf / "main.cf"
    try:
        temp = run.conf / ".main.cf.new"
        temp.write_text("smtpd_banner = two\n")
        temp.replace(main)
        change = run.wait(lambda e: e["event"] == "change_detected")
        assert "smtpd_banner" in change["parameters"] and change["files"] == [str(main)]
        main.unlink()
        main.mkdir()
        error = run.wait(lambda e: e["event"] == "config_error")
        assert error["path"] == str(main) and "is a directory" in error["message"]
        main.rmdir()
        main.write_text("smtpd_banner = three\n")
        run.wait(
            lambda e: e["event"] == "change_detected" and e["change_id"] != change["change_id"]
        )
        changes = [e for e in run.events() if e["event"] == "change_detected"]
        assert len(changes) == 2  # the directory was never taken for an empty main.cf
    finally:
        run.stop()


def test_restart_repeats_nothing_and_resumes_the_log(files: Path) -> None:
    run = Running(files)
    append(run.log, line(7001, "connect from a.example[192.0.2.1]"))
    run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 7001)
    run.stop()
    first = {e["event_id"] for e in run.events()}
    append(run.log, line(7002, "connect from a.example[192.0.2.1]"))  # while down
    again = Running(files)
    try:
        again.wait(lambda e: e["event"] == "process_started" and e["pid"] == 7002)
        time.sleep(0.3)
        events = again.events()
        assert not [e for e in events if e["event_id"] in first]
        assert [e["pid"] for e in events if e["event"] == "process_started"] == [7002]
    finally:
        again.stop()


def test_a_corrupt_state_database_is_set_aside(files: Path) -> None:
    state = files / "state"
    state.mkdir()
    (state / "state.sqlite").write_bytes(b"this is not a database at all" * 100)
    run = Running(files)
    try:
        reset = run.wait(lambda e: e["event"] == "state_reset")
        assert "corrupt" in reset["kept_as"] and Path(reset["kept_as"]).exists()
    finally:
        run.stop()


def test_an_unusable_state_directory_keeps_the_service_running(files: Path) -> None:
    blocker = files / "not-a-dir"
    blocker.write_text("")
    run = Running(files, state_dir=blocker / "state")
    try:
        error = run.wait(lambda e: e["event"] == "state_error")
        assert str(blocker) in error["message"]
        append(run.log, line(5151, "connect from a.example[192.0.2.1]"))
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 5151)
        assert run.healthz()[1]["state_ok"] is False
    finally:
        run.stop()


def journal_entry(cursor: int, pid: int, text: str) -> str:
    return json.dumps(
        {
            "__CURSOR": f"s=1;i={cursor}",
            "__REALTIME_TIMESTAMP": str(int(time.time() * 1e6)),
            "SYSLOG_IDENTIFIER": "postfix/smtpd",
            "SYSLOG_PID": str(pid),
            "SYSLOG_FACILITY": "2",
            "_HOSTNAME": "host",
            "MESSAGE": text,
        }
    )


@pytest.mark.skipif(not FAKE_JOURNALCTL.exists(), reason="the fake journalctl is not there")
def test_journal_source_resumes_after_its_cursor(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = files / "journal.jsonl"
    journal.write_text(journal_entry(1, 8001, "connect from old.example[192.0.2.1]") + "\n")
    argv_log = files / "argv.jsonl"
    monkeypatch.setenv("FAKE_JOURNAL", str(journal))
    monkeypatch.setenv("FAKE_JOURNAL_ARGV_LOG", str(argv_log))
    run = Running(files, journal=True)
    try:
        deadline = time.monotonic() + 10
        while not argv_log.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # journalctl read the journal's end: what follows is new
        append(journal, journal_entry(2, 8002, "connect from a.example[192.0.2.1]") + "\n")
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 8002)
    finally:
        run.stop()
    append(journal, journal_entry(3, 8003, "connect from b.example[192.0.2.1]") + "\n")
    again = Running(files, journal=True)
    try:
        again.wait(lambda e: e["event"] == "process_started" and e["pid"] == 8003)
        time.sleep(0.3)
        pids = [e["pid"] for e in again.events() if e["event"] == "process_started"]
        assert pids == [8003]  # not the entry before the first start, not 8002 again
        argvs = [json.loads(line) for line in argv_log.read_text().splitlines()]
        assert "--after-cursor=s=1;i=2" in argvs[-1]
    finally:
        again.stop()


def test_a_state_database_failing_while_running(files: Path) -> None:
    run = Running(files)
    try:
        store = run.service.store
        assert store is not None

        def full(*_args: Any, **_kwargs: Any) -> Any:
            raise StateError(f"{store.path}: cannot write state: database or disk is full")

        store.commit = full  # type: ignore[method-assign]
        append(run.log, line(6161, "connect from a.example[192.0.2.1]"))
        error = run.wait(lambda e: e["event"] == "state_error")
        assert "disk is full" in error["message"]
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 6161)
        assert run.healthz()[1]["state_ok"] is False
    finally:
        run.stop()


def test_a_second_watcher_on_the_same_state_is_refused(files: Path) -> None:
    run = Running(files)
    try:
        second = WatchService(run.service.options, out=io.StringIO())
        with pytest.raises(UsageError, match="another pfwatch"):
            second.run()
    finally:
        run.stop()


def test_a_truncated_log_is_followed_from_its_new_start(files: Path) -> None:
    run = Running(files)
    try:
        append(run.log, line(9101, "connect from a.example[192.0.2.1]") * 3)
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 9101)
        with run.log.open("r+") as handle:  # copytruncate
            handle.truncate(0)
        append(run.log, line(9102, "connect from b.example[192.0.2.2]"))
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 9102)
        assert not [e for e in run.events() if e["event"] == "source_unavailable"]
    finally:
        run.stop()


def test_systemd_notification_and_watchdog(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = str(files / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        listener.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        run = Running(files)
        try:
            seen: list[str] = []
            while "WATCHDOG=1" not in seen:
                seen.append(listener.recv(4096).decode())
            assert "READY=1" in seen and seen.index("READY=1") < seen.index("WATCHDOG=1")
        finally:
            run.stop()
        rest: list[str] = []
        while "STOPPING=1" not in rest:
            rest.append(listener.recv(4096).decode())


def test_the_configuration_directory_vanishing_and_coming_back(files: Path) -> None:
    run = Running(files)
    aside = files / "etc.aside"
    try:
        run.conf.rename(aside)
        down = run.wait(lambda e: e["event"] == "source_unavailable" and e["source"] == "config")
        assert str(run.conf) in down["message"]
        aside.rename(run.conf)
        run.wait(lambda e: e["event"] == "source_recovered" and e["source"] == "config")
        time.sleep(0.5)
        names = [e["event"] for e in run.events()]
        assert "change_detected" not in names and names.count("source_unavailable") == 1
    finally:
        run.stop()


def test_watch_started_and_status_name_the_postfix_release(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No postconf on PATH: the configured release (PFWATCH_POSTFIX_VERSION) is used, and
    a release without facts of its own says which table serves it."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    monkeypatch.setenv("PFWATCH_POSTFIX_VERSION", "3.11.4")
    run = Running(files)
    try:
        started = run.wait(lambda e: e["event"] == "watch_started")
        release = started["postfix_release"]
        assert (release["version"], release["source"], release["table"]) == (
            "3.11.4",
            "configured",
            "3.10.13",
        )
        assert "nearest older release" in release["note"]
        with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/status") as response:
            status = json.loads(response.read())
        assert status["watch"]["postfix_release"] == release
    finally:
        run.stop()
