"""check and wait on a multi-instance host without a running Postfix: each instance gets
its own configuration and only the log lines of its syslog names; the worst status wins.
The real postmulti host is in tests/integration/test_multi_instance_realpostfix.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pfwatch.changewindow import instances as multi
from pfwatch.changewindow.check_report import AgeThresholds
from pfwatch.changewindow.precheck import CheckRequest
from pfwatch.config.instances import discover
from pfwatch.errors import ExitStatus
from pfwatch.events import ProcessInfo, ProcessTableSeen
from pfwatch.sources.procfs import ProcScanner

MASTER = "smtp inet n - n - - smtpd\ncleanup unix n - n - 0 cleanup\n"
QUIET = "alias_maps =\nalias_database =\nlocal_recipient_maps =\n"


def _host(tmp_path: Path) -> Path:
    out = tmp_path / "postfix-out"
    primary = tmp_path / "postfix"
    for directory in (out, primary):
        directory.mkdir()
        (directory / "master.cf").write_text(MASTER)
    (out / "main.cf").write_text(
        f"multi_instance_name = postfix-out\nqueue_directory = {tmp_path}/q-out\n{QUIET}"
    )
    (primary / "main.cf").write_text(
        f"multi_instance_directories = {out}\nqueue_directory = {tmp_path}/q\n{QUIET}"
    )
    old = time.time() - 600  # edited before the log begins
    for directory in (out, primary):
        for name in ("main.cf", "master.cf"):
            os.utime(directory / name, (old, old))
    return primary


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(at))


def _log(tmp_path: Path, at: float) -> Path:
    lines = [
        f"{_stamp(at)} h postfix/master[100]: daemon started -- version 3.7.11, configuration x",
        f"{_stamp(at)} h postfix-out/master[200]: daemon started -- version 3.10.13, "
        "configuration y",
        f"{_stamp(at + 1)} h postfix/smtpd[101]: connect from localhost[127.0.0.1]",
        f"{_stamp(at + 1)} h postfix-out/smtpd[201]: connect from localhost[127.0.0.1]",
        f"{_stamp(at + 1)} h postfix-out/smtpd[202]: connect from localhost[127.0.0.1]",
    ]
    path = tmp_path / "maillog"
    path.write_text("\n".join(lines) + "\n")
    return path


def _assess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[multi.InstanceAssessment]:
    now = time.time()
    masters = {"postfix": 100, "postfix-out": 200}

    def poll(self: ProcScanner, at: float) -> ProcessTableSeen:
        # each scanner sees its own master only (its smtpds have exited)
        pid = masters[self.instance]
        return ProcessTableSeen(at, (ProcessInfo(pid, "master", "", self.instance, now - 90),))

    monkeypatch.setattr(ProcScanner, "poll", poll)
    primary = _host(tmp_path)
    request = CheckRequest(
        config_dir=primary,
        now=now,
        maillog=(str(_log(tmp_path, now - 60)),),
        postconf=None,
        use_git=False,
    )
    return multi.assess_all(request, discover(primary))


def test_each_instance_folds_only_its_own_log_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _assess(tmp_path, monkeypatch)
    assert [f.instance.name for f in found] == ["postfix", "postfix-out"]
    seen = [
        sorted(
            {p.pid for p in [*f.assessment.state.processes.values(), *f.assessment.state.history]}
        )
        for f in found
    ]
    assert seen == [[100, 101], [200, 201, 202]]
    assert found[1].assessment.config_dir == tmp_path / "postfix-out"
    # each instance's release from its own master's line
    releases = [(f.assessment.release["version"], f.assessment.release["source"]) for f in found]
    assert releases == [("3.7.11", "log"), ("3.10.13", "log")]
    doc = multi.report_document(found, time.time(), AgeThresholds())
    assert doc["instances"][1]["postfix_release"]["version"] == "3.10.13"
    assert "release: Postfix 3.10.13 (from log)" in multi.render_all(
        found, time.time(), AgeThresholds()
    )


def test_check_document_lists_every_instance_with_the_worst_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _assess(tmp_path, monkeypatch)
    now = time.time()
    doc = multi.report_document(found, now, AgeThresholds())
    assert [i["instance"] for i in doc["instances"]] == ["postfix", "postfix-out"]
    assert doc["instances"][1]["config_dir"] == str(tmp_path / "postfix-out")
    statuses = [ExitStatus(i["exit_code"]) for i in doc["instances"]]
    assert doc["exit_code"] == multi.worst(statuses)
    assert doc["summary"].startswith("postfix: ")
    assert "; postfix-out: " in doc["summary"]
    report = multi.plugin_report(found, now, AgeThresholds())
    assert report.status == multi.worst(statuses)
    assert report.details
    assert all(line.startswith(("[postfix] ", "[postfix-out] ")) for line in report.details)


def test_worst_status_prefers_an_action_over_unknown() -> None:
    assert multi.worst([ExitStatus.OK, ExitStatus.PENDING]) == ExitStatus.PENDING
    assert multi.worst([ExitStatus.UNKNOWN, ExitStatus.ACTION_NEEDED]) == ExitStatus.ACTION_NEEDED
    assert multi.worst([]) == ExitStatus.OK
