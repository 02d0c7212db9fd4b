"""Snapshots of a configuration directory (pfwatch.config.snapshot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _sample_config import MAIN_CF, make_config

from pfwatch.config.redact import (
    is_secret_field,
    is_secret_parameter,
    redact,
    redact_event_dict,
    short_hash,
)
from pfwatch.config.snapshot import build_snapshot, snapshot_from_json, snapshot_to_json
from pfwatch.errors import SourceUnavailable


def test_snapshot_has_parameters_services_tables_and_hashes(tmp_path: Path) -> None:
    snap = build_snapshot(str(make_config(tmp_path / "pf")), taken_at=5.0)
    assert snap.parameters["myhostname"] == "mx.example.com"
    assert snap.expanded["smtpd_banner"] == "mx.example.com ESMTP"
    assert "myhostname" in snap.depends["smtpd_banner"]
    assert [s.key for s in snap.services] == ["smtp/inet", "pickup/unix"]
    tables = {t.ref.ref: t for t in snap.tables}
    virtual = tables[f"hash:{tmp_path}/pf/virtual"]
    assert dict(virtual.entries) == {"a@example.com": "b@example.net"}
    assert virtual.freshness.state == "not-compiled"
    assert virtual.source is not None
    assert virtual.source.sha256 is not None
    assert len(virtual.source.sha256) == 64
    assert dict(tables[f"{tmp_path}/pf/nets"].entries) == {"10.0.0.0/8": ""}
    assert snap.taken_at == 5.0


def test_secrets_never_enter_the_snapshot(tmp_path: Path) -> None:
    snap = build_snapshot(str(make_config(tmp_path / "pf")))
    document = json.dumps(snapshot_to_json(snap))
    assert "TopSecret1" not in document
    assert "Hunter2pw" not in document
    tables = {t.ref.ref: t for t in snap.tables}
    sasl = tables[f"hash:{tmp_path}/pf/sasl_passwd"]
    assert sasl.ref.secret
    assert sasl.entries["[smtp.example.net]:587"].startswith("sha256:")
    relay = tables[f"mysql:{tmp_path}/pf/relay.cf"]
    assert relay.entries["user"] == "postfix"
    assert relay.entries["password"].startswith("sha256:")


def test_json_round_trip_is_exact(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    (directory / "virtual").write_bytes(b"caf\xe9@example.com x\n")
    snap = build_snapshot(str(directory), taken_at=1.5)
    again = snapshot_from_json(json.loads(json.dumps(snapshot_to_json(snap))))
    assert again == snap


def test_main_cf_syntax_error_keeps_the_last_good_parse(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    good = build_snapshot(str(directory))
    (directory / "main.cf").write_text(MAIN_CF + "this line has no equals sign\n")
    bad = build_snapshot(str(directory), previous=good)
    state = bad.files[str(directory / "main.cf")]
    assert state.stale
    (problem,) = state.problems
    assert (problem.line, problem.column, problem.message) == (
        7,
        6,
        "missing '=' after attribute name",
    )
    assert bad.parameters == good.parameters
    assert bad.expanded["smtpd_banner"] == "mx.example.com ESMTP"
    assert state.sha256 != good.files[str(directory / "main.cf")].sha256


def test_syntax_error_without_previous_snapshot_is_reported_not_raised(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    (directory / "master.cf").write_text("smtp inet n\n")
    snap = build_snapshot(str(directory))
    state = snap.files[str(directory / "master.cf")]
    assert not state.stale
    assert state.problems
    assert state.problems[0].line == 1
    assert snap.services == ()


def test_missing_and_unreadable_tables_are_recorded(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    (directory / "virtual").unlink()
    snap = build_snapshot(str(directory))
    virtual = {t.ref.ref: t for t in snap.tables}[f"hash:{directory}/virtual"]
    assert virtual.freshness.state == "missing"
    assert virtual.source is not None
    assert virtual.source.error == "no such file"
    assert virtual.entries == {}


def test_digest_changes_only_when_content_changes(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    first = build_snapshot(str(directory))
    assert build_snapshot(str(directory)).digest == first.digest
    (directory / "virtual").write_text("a@example.com c@example.net\n")
    assert build_snapshot(str(directory)).digest != first.digest


def test_unusable_directory_raises_source_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable):
        build_snapshot(str(tmp_path / "absent"))


def test_paths_name_every_file_a_watcher_must_watch(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    paths = build_snapshot(str(directory)).paths
    for name in (
        "main.cf",
        "master.cf",
        "virtual",
        "virtual.db",
        "sasl_passwd",
        "relay.cf",
        "nets",
    ):
        assert str(directory / name) in paths
    assert len(paths) == len(set(paths))


def test_redaction_helpers_and_structlog_processor() -> None:
    assert short_hash("x") == short_hash("x")
    assert short_hash("x") != short_hash("y")
    assert redact(short_hash("x")) == short_hash("x")
    assert is_secret_parameter("smtp_sasl_password_maps")
    assert is_secret_parameter("lmtp_sasl_password_maps")
    assert not is_secret_parameter("smtp_sasl_auth_enable")
    assert is_secret_field("bind_pw") and is_secret_field("ldapsource_bind_pw")
    assert is_secret_field("password") and not is_secret_field("password_file_owner")
    event = redact_event_dict(None, "info", {"event": "x", "bind_pw": "s3cret", "user": "u"})
    assert event == {"event": "x", "bind_pw": short_hash("s3cret"), "user": "u"}


def test_a_directory_where_a_table_should_be_is_reported(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    (directory / "virtual").unlink()
    (directory / "virtual").mkdir()
    snap = build_snapshot(str(directory))
    virtual = {t.ref.ref: t for t in snap.tables}[f"hash:{directory}/virtual"]
    assert virtual.source is not None
    assert (virtual.source.error, virtual.source.sha256) == ("is a directory", None)
