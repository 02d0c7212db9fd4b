# ruff: noqa: E501 - the log lines below are quoted verbatim
"""`pfwatch explain` through the command line: JSON document, human output, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pfwatch.cli.explain_cmd import parse_changed_at
from pfwatch.errors import UsageError
from pfwatch.sinks.narrative import narrate
from pfwatch.testing.cli import run_pfwatch
from pfwatch.testing.times import epoch_times

LOG = """\
Jan 10 10:00:00 mx postfix/smtpd[100]: connect from a[192.0.2.1]
Jan 10 10:00:01 mx postfix/smtpd[100]: 0ABC123: client=a[192.0.2.1]
Jan 10 10:00:01 mx postfix/cleanup[101]: 0ABC123: message-id=<x@a>
Jan 10 10:00:01 mx postfix/qmgr[102]: 0ABC123: from=<x@a>, size=100, nrcpt=1 (queue active)
Jan 10 10:00:02 mx postfix/smtpd[100]: disconnect from a[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Jan 10 10:00:02 mx postfix/smtp[103]: 0ABC123: to=<y@b>, relay=b[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)
Jan 10 10:00:02 mx postfix/qmgr[102]: 0ABC123: removed
garbage line without a syslog envelope
Jan 10 10:05:00 mx postfix/master[1]: reload -- version 3.7.11, configuration /etc/postfix
Jan 10 10:06:00 mx postfix/smtpd[200]: connect from c[192.0.2.3]
Jan 10 10:06:01 mx postfix/smtpd[200]: disconnect from c[192.0.2.3] quit=1 commands=1
Jan 10 10:06:02 mx postfix/smtpd[200]: this line matches nothing in the catalogue
"""


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "maillog"
    path.write_text(LOG)
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = run_pfwatch("explain", *args)
    assert result.exception is None, result.exception
    return result.exit_code, result.stdout


def test_json_document_has_summary_processes_and_changes(log: Path) -> None:
    code, out = invoke(
        str(log),
        "--year",
        "2024",
        "--json",
        "--changed-at",
        "10:00:30=smtpd_banner",
        "--changed-at",
        "10:03=/etc/postfix/master.cf",
    )
    assert code == 0
    raw = json.loads(out)
    assert raw["processes"][0]["first_seen_at"].endswith("Z")  # RFC 3339 in JSON output
    doc = epoch_times(raw)
    assert doc["schema"] == "pfwatch.explain/1"
    summary = doc["summary"]
    assert summary["lines_recognized"] + summary["lines_unrecognized"] == summary["lines_postfix"]
    assert summary["lines_unrecognized"] >= 1
    smtpd = next(p for p in doc["processes"] if p["label"] == "smtpd[100]")
    assert smtpd["exit_reason"] == "idle_timeout" and smtpd["basis"] == "inferred"
    assert smtpd["exited_at"] - smtpd["last_session_end_at"] == pytest.approx(100.5, abs=1e-6)
    banner, master = doc["changes"]
    assert banner["parameters"] == ["smtpd_banner"]
    assert [a["daemon"] for a in banner["affected"]] == ["smtpd"]
    assert banner["status"] == "live" and banner["needs"] == []
    assert banner["made_live_by"]["process"] == smtpd["process"]
    assert banner["live_at"] == pytest.approx(smtpd["exit_latest"], abs=1e-6)
    assert master["needs"] == [] and master["needs_detail"][0]["action"] == "reload"
    assert master["needs_detail"][0]["satisfied_by"] == "postfix reload"
    assert [e["name"] for e in doc["master_events"]] == ["postfix_reloaded"]


def test_human_output_and_unrecognized_lines(log: Path) -> None:
    code, out = invoke(
        str(log), "--year", "2024", "--unrecognized", "--changed-at", "10:00:30=smtpd_banner"
    )
    assert code == 0
    assert "It went live at 10:01:43 (inferred): the exit of smtpd[100] made it live" in out
    assert "this line matches nothing in the catalogue" in out
    assert "Processes" in out and "█" in out


@pytest.mark.parametrize("value", ["", "=x", "yesterday", "25:99"])
def test_bad_changed_at_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        parse_changed_at(value)


def test_changed_at_forms() -> None:
    assert parse_changed_at("1700000000=/etc/postfix/x").at == 1700000000
    assert parse_changed_at("06:26").time_of_day == (6, 26, 0.0)
    spec = parse_changed_at("Apr  9 06:26:00=main.cf")
    assert spec.month_day == (4, 9) and spec.file == "main.cf"


def test_missing_log_and_no_log_are_clear_errors(tmp_path: Path) -> None:
    assert run_pfwatch("explain").exit_code != 0
    missing = run_pfwatch("explain", str(tmp_path / "nope.log"))
    assert missing.exit_code == 3
    assert missing.stderr.startswith("pfwatch: ") and "nope.log" in missing.stderr


def test_demo_replays_the_shipped_scenario() -> None:
    demo = Path(__file__).resolve().parents[2] / "pfwatch" / "demo" / "scenario.log"
    if not demo.is_file():
        pytest.skip("the recorded demo scenario is not in this checkout")
    code, out = invoke("--demo", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["changes"] and all(c["status"] == "live" for c in doc["changes"])
    first = doc["changes"][0]
    assert first["made_live_by"]["label"].startswith("trivial-rewrite")


def test_demo_routing_cache_window_covers_the_mail_that_still_went_to_virtual() -> None:
    root = Path(__file__).resolve().parents[2] / "pfwatch" / "demo"
    if not (root / "scenario.json").is_file():
        pytest.skip("the recorded demo scenario is not in this checkout")
    recorded = json.loads((root / "scenario.json").read_text())
    code, out = invoke("--demo", "--json")
    assert code == 0
    doc = epoch_times(json.loads(out))
    first = doc["changes"][0]
    window = first["routing_cache"]
    truth = {p["pid"]: p for p in recorded["truth"]["processes"]}
    rewrite = truth[int(first["made_live_by"]["label"].split("[")[1].rstrip("]"))]
    # the old trivial-rewrite was really gone within the window's start second
    assert window["earliest"] <= rewrite["gone_by"] <= window["gone_by"] + 0.1
    cached = next(m for m in recorded["mail"] if "cache" in m["why"])
    relayed = next(m for m in recorded["mail"] if m["expected_route"] == "relay")
    assert cached["expected_route"] == "virtual"
    # the mail after trivial-rewrite's exit that still went to virtual lies in the window
    assert window["earliest"] < cached["at"] < window["latest"] == first["live_at"]
    assert relayed["at"] > window["earliest"]
    text = " ".join(narrate(doc))
    assert "qmgr may reuse its last routing answer for the same address for up to 30 s" in text
    assert "Deliveries by virtual inside that window (virtual[21790]" in text


def test_rotated_files_in_any_order_replay_in_time_order(tmp_path: Path) -> None:
    lines = LOG.splitlines(keepends=True)
    (tmp_path / "mail.log.1").write_text("".join(lines[:7]))
    (tmp_path / "mail.log").write_text("".join(lines[7:]))
    (tmp_path / "all").write_text(LOG)
    _, split = invoke(
        str(tmp_path / "mail.log"), str(tmp_path / "mail.log.1"), "--year", "2024", "--json"
    )
    _, whole = invoke(str(tmp_path / "all"), "--year", "2024", "--json")
    assert json.loads(split)["processes"] == json.loads(whole)["processes"]
