"""The recorded demo scenario shipped in pfwatch/demo is complete, consistent and neutral."""

from __future__ import annotations

import json
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

DEMO = Path(str(resources.files("pfwatch").joinpath("demo")))
# Where a recording machine keeps its private instance and its checkout: the shipped
# scenario must name neither (the recorder rewrites them to /etc/postfix and friends).
RECORDING_PLACES = re.compile(
    "|".join(
        re.escape(place + "/")
        for place in (tempfile.gettempdir(), str(Path(__file__).resolve().parents[3]))
    )
    + "|pfw-"
)
STAMP = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) ")


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    return json.loads((DEMO / "scenario.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def log() -> str:
    return (DEMO / "scenario.log").read_text(encoding="utf-8")


def test_shipped_files_are_small_and_name_no_recording_machine_path(log: str) -> None:
    assert (DEMO / "scenario.log").stat().st_size < 200_000
    for path in [DEMO / "scenario.log", DEMO / "scenario.json", *(DEMO / "config").iterdir()]:
        text = path.read_text(encoding="utf-8")
        assert not RECORDING_PLACES.search(text), path
    assert all(STAMP.match(line) for line in log.splitlines())


def test_metadata_has_what_explain_demo_reads(scenario: dict[str, Any]) -> None:
    assert scenario["format"] == 1
    assert (DEMO / scenario["config_dir"] / "main.cf").is_file()
    assert scenario["max_idle"] == int(
        re.search(r"^max_idle = (\d+)s$", scenario["config_after"]["main.cf"], re.M).group(1)  # type: ignore[union-attr]
    )
    files = [change["file"] for change in scenario["changes"]]
    assert files == ["/etc/postfix/vdomains", "/etc/postfix/client_access", "/etc/postfix/main.cf"]
    times = [c["at"] for c in scenario["changes"]] + [a["at"] for a in scenario["actions"]]
    start = next(a["at"] for a in scenario["actions"] if a["action"] == "start")
    stop = next(a["at"] for a in scenario["actions"] if a["action"] == "stop")
    assert all(start <= t <= stop for t in times)
    before, after = scenario["config_before"], scenario["config_after"]
    assert before["vdomains"].splitlines()[0] == "example.com"
    assert after["vdomains"].splitlines()[0] == "#example.com"
    assert (DEMO / "config" / "vdomains").read_text(encoding="utf-8") == after["vdomains"]


def test_log_shows_the_route_switch_table_restart_and_reload(
    scenario: dict[str, Any], log: str
) -> None:
    routes = []
    for mail in scenario["mail"]:
        found = re.search(rf"{mail['queue_id']}: to=<[^>]+>, relay=(\S+?),", log)
        assert found is not None, mail
        routes.append("virtual" if found.group(1) == "virtual" else "relay")
    assert routes == [mail["expected_route"] for mail in scenario["mail"]]
    assert routes == ["virtual", "virtual", "virtual", "relay"]
    assert re.search(r"smtpd\[\d+\]: table hash:/etc/postfix/client_access\(.*has changed", log)
    assert "reload -- version" in log
    assert re.search(r"trivial-rewrite\[\d+\]: idle timeout -- exiting", log)


def test_truth_shows_trivial_rewrite_gone_before_the_relayed_mail(scenario: dict[str, Any]) -> None:
    edit = scenario["changes"][0]["at"]
    relayed = next(m["at"] for m in scenario["mail"] if m["expected_route"] == "relay")
    rewrites = [p for p in scenario["truth"]["processes"] if p["name"] == "trivial-rewrite"]
    stale = [p for p in rewrites if p["born_at"] < edit]
    assert stale and all(p["gone_by"] is not None and p["gone_by"] < relayed for p in stale)
    # The mail between trivial-rewrite's exit and the relayed one was routed from qmgr's cache.
    cached = scenario["mail"][2]
    assert cached["expected_route"] == "virtual"
    assert max(p["gone_by"] for p in stale) < cached["at"] < relayed
