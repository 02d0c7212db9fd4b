"""watch on a multi-instance host, in-process on temporary files (no Postfix, no /proc):
each instance's log lines, changes and processes stay its own, findings name their
instance, metrics carry ``postfix_instance``, and a restart restores every instance."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pfwatch.changewindow import instances as multi
from pfwatch.changewindow.precheck import CheckRequest
from pfwatch.config.instances import discover
from pfwatch.instance.local import free_port
from pfwatch.settings import Settings
from pfwatch.sources.procfs import ProcScanner
from pfwatch.testing.watch_thread import WatchThread, append, syslog_line

Event = dict[str, Any]
MASTER = "smtp      inet  n       -       n       -       -       smtpd\n"


class Running(WatchThread):
    """The service on the primary of the ``_host`` layout."""

    def __init__(self, tmp_path: Path) -> None:
        settings = Settings(
            config_dir=tmp_path / "postfix",
            maillog=tmp_path / "maillog",
            journal=False,
            state_dir=tmp_path / "state",
            listen_host="127.0.0.1",
            listen_port=free_port(),
            debounce=0.05,
            log_format="json",
        )
        super().__init__(settings)


def _host(tmp_path: Path) -> tuple[Path, Path]:
    primary, out = tmp_path / "postfix", tmp_path / "postfix-out"
    for directory in (primary, out):
        directory.mkdir()
        (directory / "master.cf").write_text(MASTER)
    (primary / "main.cf").write_text(f"multi_instance_directories = {out}\nsmtpd_banner = a\n")
    (out / "main.cf").write_text("multi_instance_name = postfix-out\nsmtpd_banner = b\n")
    (tmp_path / "maillog").write_text("")
    return primary, out


def _line(prefix: str, pid: int, text: str) -> str:
    return syslog_line(prefix, pid, text)


def test_each_instance_keeps_its_own_changes_and_processes(tmp_path: Path) -> None:
    _primary, out = _host(tmp_path)
    run = Running(tmp_path)
    try:
        started = run.events()[0]
        assert [i["instance"] for i in started["instances"]] == ["postfix", "postfix-out"]
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
        append(
            tmp_path / "maillog",
            f"{stamp} host postfix/master[100]: daemon started -- version 3.5.25, "
            "configuration x\n"
            f"{stamp} host postfix-out/master[200]: daemon started -- version 3.10.13, "
            "configuration y\n",
        )
        append(tmp_path / "maillog", _line("postfix", 101, "connect from a[192.0.2.1]"))
        append(tmp_path / "maillog", _line("postfix-out", 201, "connect from b[192.0.2.2]"))
        append(tmp_path / "maillog", _line("elsewhere", 301, "connect from c[192.0.2.3]"))
        for name, pid in (("postfix", 101), ("postfix-out", 201)):
            seen = run.wait(lambda e, p=pid: e["event"] == "process_started" and e["pid"] == p)
            assert seen["instance"] == name
        (out / "main.cf").write_text("multi_instance_name = postfix-out\nsmtpd_banner = c\n")
        detected = run.wait(lambda e: e["event"] == "change_detected")
        assert detected["instance"] == "postfix-out"
        assert detected["stale_processes"] == ["smtpd[201]"]
        assert str(out / "main.cf") in detected["files"]
        time.sleep(0.3)
        changes = [e for e in run.events() if e["event"] == "change_detected"]
        assert len(changes) == 1, changes
        assert not [e for e in run.events() if e.get("pid") == 301]  # no followed instance
        text = run.metrics()
        assert 'pfwatch_config_changes_pending{postfix_instance="postfix-out"} 1.0' in text
        assert 'pfwatch_config_changes_pending{postfix_instance="postfix"} 0.0' in text
        assert (
            'pfwatch_stale_processes{master_service="smtp/inet",postfix_instance="postfix-out"}'
            in text
        )
        status = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{run.port}/status", timeout=5).read()
        )
        sections = {s["instance"]: s for s in status["instances"]}
        assert [p["pid"] for p in sections["postfix-out"]["processes"]] == [200, 201]
        assert [p["pid"] for p in sections["postfix"]["processes"]] == [100, 101]
        assert len(sections["postfix-out"]["pending_changes"]) == 1
        assert sections["postfix-out"]["postfix_version"] == "3.10.13"
        release = status["watch"]["postfix_release"]
        assert (release["version"], release["source"]) == ("3.5.25", "log")
    finally:
        run.stop()
    again = Running(tmp_path)
    try:
        time.sleep(0.3)
        sections = {
            s["instance"]: s
            for s in json.loads(
                urllib.request.urlopen(f"http://127.0.0.1:{again.port}/status", timeout=5).read()
            )["instances"]
        }
        assert [p["pid"] for p in sections["postfix-out"]["processes"]] == [200, 201]
        assert len(sections["postfix-out"]["pending_changes"]) == 1
    finally:
        again.stop()


def test_one_instance_has_no_instance_fields(tmp_path: Path) -> None:
    primary, _ = _host(tmp_path)
    (primary / "main.cf").write_text("smtpd_banner = a\n")
    run = Running(tmp_path)
    try:
        append(tmp_path / "maillog", _line("postfix", 101, "connect from a[192.0.2.1]"))
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 101)
        (primary / "main.cf").write_text("smtpd_banner = b\n")
        detected = run.wait(lambda e: e["event"] == "change_detected")
        assert "instance" not in detected
        assert "instances" not in run.events()[0]
        assert "postfix_instance" not in run.metrics()
    finally:
        run.stop()


def test_check_with_the_state_dir_starts_each_instance_from_its_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _primary, out = _host(tmp_path)
    run = Running(tmp_path)
    try:
        append(tmp_path / "maillog", _line("postfix-out", 201, "connect from b[192.0.2.2]"))
        run.wait(lambda e: e["event"] == "process_started" and e["pid"] == 201)
        (out / "main.cf").write_text("multi_instance_name = postfix-out\nsmtpd_banner = c\n")
        run.wait(lambda e: e["event"] == "change_detected")
    finally:
        run.stop()
    monkeypatch.setattr(ProcScanner, "poll", lambda self, now: None)  # no /proc view
    request = CheckRequest(
        config_dir=tmp_path / "postfix",
        now=time.time(),
        state_dir=tmp_path / "state",
        postconf=None,
        use_git=False,
    )
    found = multi.assess_all(request, discover(tmp_path / "postfix"))
    assert [f.assessment.basis for f in found] == ["state-dir", "state-dir"]
    assert found[0].assessment.pending() == []
    pending = found[1].assessment.pending()
    assert [c.stale for c in pending] == [["postfix-out/smtpd/201"]]
