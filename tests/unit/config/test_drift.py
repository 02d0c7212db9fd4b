"""What drifted, end to end through the watch's own parts: a temporary configuration
directory edited in one burst (a parameter, a secret, a master.cf field and override, a
table source with keys added, removed and changed, a SASL password table), the
``ConfigChanged`` the tracker makes, the ``change_detected`` the core reports, the
/status row, and the state document round trip."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from click.testing import CliRunner

from pfwatch.cli.main import cli
from pfwatch.config.drift import KEYS_SHOWN
from pfwatch.core.fold import step
from pfwatch.core.state import EngineState, from_json, to_json
from pfwatch.events import ConfigChanged, Drift
from pfwatch.service.config_tracker import ConfigTracker
from pfwatch.service.state_doc import state_document
from pfwatch.service.status import status_document
from pfwatch.store.sqlite import StateStore

MASTER = (
    "smtp      inet  n       -       y       -       -       smtpd\n"
    "submission inet n       -       y       -       -       smtpd\n"
    "  -o smtpd_tls_security_level=may\n"
    "cleanup   unix  n       -       y       -       0       cleanup\n"
    "qmgr      unix  n       -       n       300     1       qmgr\n"
)
MAIN = (
    "myhostname = mx.example.com\n"
    "smtpd_banner = $myhostname ESMTP before\n"
    "virtual_alias_maps = texthash:{conf}/virtual\n"
    "smtp_sasl_password_maps = texthash:{conf}/sasl_passwd\n"
    "smtp_sasl_auth_enable = yes\n"
)
VIRTUAL = "".join(f"user{i}@example.com root\n" for i in range(10))
SASL = "[relay.example.com]:587 alice:hunter2\n"


def write(path: Path, text: str, mtime: float) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.utime(temp, (mtime, mtime))
    temp.replace(path)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_drift_of_one_burst_of_edits(tmp_path: Path) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    write(conf / "main.cf", MAIN.format(conf=conf), 90.0)
    write(conf / "master.cf", MASTER, 90.0)
    write(conf / "virtual", VIRTUAL, 90.0)
    write(conf / "sasl_passwd", SASL, 90.0)
    tracker = ConfigTracker(conf, None)
    state = EngineState()
    for event in tracker.check(100.0).events:
        step(state, event)

    write(conf / "main.cf", MAIN.format(conf=conf).replace("before", "after"), 150.0)
    write(
        conf / "master.cf",
        MASTER.replace(
            "y       -       0       cleanup", "y       -       5       cleanup"
        ).replace("security_level=may", "security_level=encrypt"),
        150.0,
    )
    virtual = VIRTUAL.replace("user0@example.com root", "user0@example.com postmaster").replace(
        "user1@example.com root\n", ""
    ) + "".join(f"new{i}@example.com root\n" for i in range(6))
    write(conf / "virtual", virtual, 150.0)
    write(conf / "sasl_passwd", "[relay.example.com]:587 alice:swordfish\n", 150.0)
    (changed,) = tracker.check(160.0).events
    assert isinstance(changed, ConfigChanged)
    drift = changed.drift
    assert drift is not None
    assert drift.digest_before != drift.digest_after

    banner = next(p for p in drift.parameters if p.name == "smtpd_banner")
    assert (banner.old, banner.new) == ("$myhostname ESMTP before", "$myhostname ESMTP after")
    assert (banner.old_expanded, banner.new_expanded) == (
        "mx.example.com ESMTP before",
        "mx.example.com ESMTP after",
    )

    services = {s.service: s for s in drift.services}
    assert {(f.name, f.old, f.new) for f in services["cleanup/unix"].fields} == {
        ("maxproc", "0", "5")
    }
    assert {(f.name, f.old, f.new) for f in services["submission/inet"].fields} == {
        ("-o smtpd_tls_security_level", "may", "encrypt")
    }

    tables = {Path(t.ref.split(":", 1)[1]).name: t for t in drift.tables}
    aliases = tables["virtual"]
    assert (aliases.added, aliases.removed, aliases.changed) == (6, 1, 1)
    assert len(aliases.keys) == KEYS_SHOWN and aliases.more_keys == 8 - KEYS_SHOWN
    assert aliases.keys == tuple(sorted(aliases.keys))
    assert (aliases.sha256_before, aliases.sha256_after) == (sha(VIRTUAL), sha(virtual))
    secret = tables["sasl_passwd"]
    assert secret.secret and secret.keys == () and secret.changed == 1
    files = {Path(f.path).name: f for f in drift.files}
    assert set(files) == {"main.cf", "master.cf", "virtual", "sasl_passwd"}
    assert files["master.cf"].sha256_before == sha(MASTER)

    # -- the events, /status and the state document ------------------------------------
    (detected,) = [f for f in step(state, changed) if f.name == "change_detected"]
    text = json.dumps(detected.data)
    for secret_text in ("hunter2", "swordfish", "alice", "relay.example.com"):
        assert secret_text not in text
    assert detected.data["drift"] == drift.to_json()
    assert Drift.from_json(json.loads(json.dumps(drift.to_json()))) == drift
    status = status_document(
        state, now=170.0, digest=None, sources={}, state_ok=True, last_events=(), watch={}
    )
    (row,) = status["pending_changes"]
    assert row["drift"]["parameters"] == drift.to_json()["parameters"]
    again = from_json(to_json(state))
    assert next(iter(again.changes.values())).drift == json.loads(json.dumps(drift.to_json()))
    assert json.loads(json.dumps(state_document(state))) == json.loads(to_json(state))

    # -- pfwatch history ----------------------------------------------------------------
    store = StateStore.open(tmp_path / "state")
    store.commit([detected])
    store.close()
    result = CliRunner().invoke(cli, ["history", "--state-dir", str(tmp_path / "state"), "--json"])
    assert result.exit_code == 0, result.output
    (past,) = json.loads(result.output)
    assert past["drift"] == json.loads(json.dumps(drift.to_json()))
    text = CliRunner().invoke(cli, ["history", "--state-dir", str(tmp_path / "state"), "--drift"])
    assert text.exit_code == 0, text.output
    assert "smtpd_banner: '$myhostname ESMTP before' -> '$myhostname ESMTP after'" in text.output
    assert "master.cf cleanup/unix maxproc: '0' -> '5'" in text.output
    assert "+6 -1 ~1 keys (" in text.output and "and 3 more)" in text.output
    assert "hunter2" not in text.output and "alice" not in text.output
    assert "(keys of a table of secrets not shown)" in text.output


def test_a_secret_parameter_value_is_redacted(tmp_path: Path) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    write(conf / "main.cf", "ldapsource_bind_pw = first\n", 90.0)
    write(conf / "master.cf", MASTER, 90.0)
    tracker = ConfigTracker(conf, None)
    tracker.check(100.0)
    write(conf / "main.cf", "ldapsource_bind_pw = second\n", 150.0)
    (changed,) = tracker.check(160.0).events
    assert isinstance(changed, ConfigChanged) and changed.drift is not None
    (param,) = [p for p in changed.drift.parameters if p.name == "ldapsource_bind_pw"]
    assert param.old is not None and param.old.startswith("sha256:")
    assert param.new is not None and param.new.startswith("sha256:")
    assert "first" not in json.dumps(changed.drift.to_json())
