"""``pfwatch explain`` names the Postfix release the log ran, and any upgrade within it."""

from __future__ import annotations

from pathlib import Path

from pfwatch.cli.explain_cmd import explain_document
from pfwatch.knowledge import releases
from pfwatch.sinks.narrative import narrate
from pfwatch.testing.cli import run_pfwatch

UPGRADE = """\
Jun  1 10:00:00 mx postfix/master[100]: daemon started -- version 3.7.11, configuration /etc/postfix
Jun  1 10:00:05 mx postfix/smtpd[101]: connect from client[192.0.2.1]
Jun  1 10:05:00 mx postfix/master[100]: terminating on signal 15
Jun  1 10:06:00 mx postfix/master[200]: daemon started -- version 3.10.13, configuration /etc/pf
Jun  1 10:07:00 mx postfix/master[200]: reload -- version 3.10.13, configuration /etc/pf
"""
NO_VERSION = "Jun  1 10:00:05 mx postfix/smtpd[101]: connect from client[192.0.2.1]\n"


def _log(tmp_path: Path, text: str) -> str:
    path = tmp_path / "maillog"
    path.write_text(text)
    return str(path)


def test_log_release_wins_and_upgrade_is_shown(tmp_path: Path) -> None:
    doc = explain_document([_log(tmp_path, UPGRADE)], year=2026, postfix_version="3.5.25")
    release = doc["postfix_release"]
    assert (release["version"], release["source"], release["table"]) == (
        "3.10.13",
        "log",
        "3.10.13",
    )
    assert [(u["from"], u["to"]) for u in release["upgrades"]] == [("3.7.11", "3.10.13")]
    assert releases.describe(release) == "Postfix 3.10.13 (from log): upgraded 3.7.11 -> 3.10.13"


def test_configured_release_when_the_log_has_none(tmp_path: Path) -> None:
    log = _log(tmp_path, NO_VERSION)
    configured = explain_document([log], year=2026, postfix_version="3.11.1")["postfix_release"]
    assert (configured["source"], configured["table"], configured["exact"]) == (
        "configured",
        "3.10.13",
        False,
    )
    assert "nearest older release" in releases.describe(configured)
    unknown = explain_document([log], year=2026)["postfix_release"]
    assert releases.describe(unknown) == "Postfix release unknown: using 3.7.11 facts"


def test_unparseable_version_warns_in_the_text_output(tmp_path: Path) -> None:
    log = _log(tmp_path, NO_VERSION)
    result = run_pfwatch("explain", log, "--year", "2026", "--postfix-version", "vintage")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())  # the panel wraps lines
    assert "Postfix vintage (from configured): warning: cannot parse Postfix version" in text


def test_each_process_gets_the_release_running_at_its_birth(tmp_path: Path) -> None:
    log = UPGRADE + "Jun  1 10:08:00 mx postfix/smtpd[201]: connect from client[192.0.2.2]\n"
    doc = explain_document([_log(tmp_path, log)], year=2026)
    by_label = {p["label"]: p.get("postfix_release") for p in doc["processes"]}
    assert by_label["smtpd[101]"] == "3.7.11"
    assert by_label["smtpd[201]"] == "3.10.13"
    upgraded = [e for e in doc["master_events"] if e["name"] == "postfix_upgraded"]
    assert [(e["from"], e["to"]) for e in upgraded] == [("3.7.11", "3.10.13")]


def test_the_upgrade_is_told_in_the_narrative(tmp_path: Path) -> None:
    doc = explain_document([_log(tmp_path, UPGRADE)], year=2026)
    assert "10:06:00: Postfix upgraded from 3.7.11 to 3.10.13." in narrate(doc)


TWO_INSTANCES = """\
Jun  1 10:00:00 mx postfix/master[100]: daemon started -- version 3.7.11, configuration /etc/postfix
Jun  1 10:00:01 mx postfix-out/master[300]: daemon started -- version 3.7.11, configuration /etc/o
Jun  1 10:00:05 mx postfix/smtpd[101]: connect from client[192.0.2.1]
Jun  1 10:00:06 mx postfix-out/smtpd[301]: connect from client[192.0.2.3]
Jun  1 10:05:00 mx postfix-out/master[300]: terminating on signal 15
Jun  1 10:06:00 mx postfix-out/master[400]: daemon started -- version 3.10.13, configuration /etc/o
Jun  1 10:06:05 mx postfix-out/smtpd[401]: connect from client[192.0.2.4]
Jun  1 10:06:06 mx postfix/smtpd[102]: connect from client[192.0.2.2]
"""


def test_each_instance_has_its_own_release_and_upgrades(tmp_path: Path) -> None:
    doc = explain_document([_log(tmp_path, TWO_INSTANCES)], year=2026)
    release = doc["postfix_release"]
    assert (release["version"], release["upgrades"]) == ("3.7.11", [])  # the primary's
    out = release["instances"]["postfix-out"]
    assert [(u["from"], u["to"]) for u in out["upgrades"]] == [("3.7.11", "3.10.13")]
    by_label = {(p["instance"], p["label"]): p.get("postfix_release") for p in doc["processes"]}
    assert by_label[("postfix", "smtpd[102]")] == "3.7.11"  # born after postfix-out upgraded
    assert by_label[("postfix-out", "smtpd[301]")] == "3.7.11"
    assert by_label[("postfix-out", "smtpd[401]")] == "3.10.13"
    upgraded = [e for e in doc["master_events"] if e["name"] == "postfix_upgraded"]
    assert [(e["instance"], e["from"], e["to"]) for e in upgraded] == [
        ("postfix-out", "3.7.11", "3.10.13")
    ]
    assert "postfix-out: Postfix upgraded from 3.7.11 to 3.10.13." in "\n".join(narrate(doc))
