"""Semantic diff of snapshots and ConfigChanged inputs (the commands: tests/unit/cli)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from _sample_config import MAIN_CF, make_config

from pfwatch.config.diff import diff_lines, diff_snapshots
from pfwatch.config.facts import change_inputs, facts_from_snapshot
from pfwatch.config.snapshot import build_snapshot, snapshot_from_json, snapshot_to_json


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_identical_snapshots_have_an_empty_diff(tmp_path: Path) -> None:
    directory = str(make_config(tmp_path / "pf"))
    diff = diff_snapshots(build_snapshot(directory), build_snapshot(directory))
    assert diff.empty
    assert diff_lines(diff) == []


def test_a_referenced_parameter_change_shows_on_the_referencing_parameter(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    old = build_snapshot(str(directory))
    _edit(directory / "main.cf", "myhostname = mx.example.com", "myhostname = mx2.example.com")
    diff = diff_snapshots(old, build_snapshot(str(directory)))
    changes = {p.name: p for p in diff.parameters}
    assert changes["myhostname"].kind == "changed"
    assert not changes["myhostname"].expanded_only
    banner = changes["smtpd_banner"]
    assert banner.expanded_only
    assert (banner.old_expanded, banner.new_expanded) == (
        "mx.example.com ESMTP",
        "mx2.example.com ESMTP",
    )
    assert banner.via == ("myhostname",)
    assert diff.services == ()
    assert diff.tables == ()
    assert diff.files == (str(directory / "main.cf"),)


def test_added_and_removed_parameters(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    old = build_snapshot(str(directory))
    _edit(directory / "main.cf", "smtpd_banner = $myhostname ESMTP\n", "max_idle = 20s\n")
    diff = diff_snapshots(old, build_snapshot(str(directory)))
    changes = {p.name: p for p in diff.parameters}
    assert changes["max_idle"].kind == "added"
    assert (changes["max_idle"].old_raw, changes["max_idle"].new_raw) == (None, "20s")
    assert changes["smtpd_banner"].kind == "removed"
    assert changes["smtpd_banner"].new_expanded != "mx.example.com ESMTP"


def test_master_cf_changes_field_by_field_and_override_by_override(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    old = build_snapshot(str(directory))
    (directory / "master.cf").write_text(
        "smtp      inet  n       -       n       -       10      smtpd\n"
        "  -o max_idle=10s -o syslog_name=postfix/mx\n"
        "submission inet n       -       n       -       -       smtpd\n"
    )
    diff = diff_snapshots(old, build_snapshot(str(directory)))
    services = {s.key: s for s in diff.services}
    assert services["pickup/unix"].kind == "removed"
    assert services["submission/inet"].kind == "added"
    smtp = services["smtp/inet"]
    assert [(f.name, f.old, f.new) for f in smtp.fields] == [("maxproc", "-", "10")]
    assert {(f.name, f.old, f.new) for f in smtp.overrides} == {
        ("max_idle", None, "10s"),
        ("syslog_name", None, "postfix/mx"),
    }


def test_table_entries_by_key_file_lists_and_postmap_runs(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    compiled = directory / "virtual.db"
    compiled.write_bytes(b"stand-in for a db")
    os.utime(compiled, (2000.0, 2000.0))
    os.utime(directory / "virtual", (1000.0, 1000.0))
    old = build_snapshot(str(directory))
    (directory / "virtual").write_text("a@example.com z@example.net\nnew@example.com n@x\n")
    os.utime(directory / "virtual", (3000.0, 3000.0))
    (directory / "nets").write_text("10.0.0.0/8, 192.168.0.0/16\n")
    diff = diff_snapshots(old, build_snapshot(str(directory)))
    tables = {t.ref: t for t in diff.tables}
    virtual = tables[f"hash:{directory}/virtual"]
    assert {(e.name, e.old, e.new) for e in virtual.entries} == {
        ("a@example.com", "b@example.net", "z@example.net"),
        ("new@example.com", None, "n@x"),
    }
    assert (virtual.old_freshness, virtual.new_freshness) == ("fresh", "stale")
    assert virtual.source_changed
    assert not virtual.compiled_changed
    nets = tables[f"{directory}/nets"]
    assert [(e.name, e.old, e.new) for e in nets.entries] == [("192.168.0.0/16", None, "")]
    assert f"+ file list {directory}/nets: 192.168.0.0/16" in diff_lines(diff)

    before_postmap = build_snapshot(str(directory))
    os.utime(compiled, (4000.0, 4000.0))
    after = diff_snapshots(before_postmap, build_snapshot(str(directory)))
    (rebuilt,) = after.tables
    assert rebuilt.compiled_changed
    assert (rebuilt.old_freshness, rebuilt.new_freshness) == ("stale", "fresh")
    assert rebuilt.entries == ()


def test_secret_values_appear_only_as_short_hashes(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    old = build_snapshot(str(directory))
    (directory / "sasl_passwd").write_text("[smtp.example.net]:587 user:NewSecret2\n")
    _edit(directory / "relay.cf", "Hunter2pw", "Hunter3pw")
    diff = diff_snapshots(old, build_snapshot(str(directory)))
    text = "\n".join(diff_lines(diff)) + json.dumps([e.new for t in diff.tables for e in t.entries])
    for secret in ("TopSecret1", "NewSecret2", "Hunter2pw", "Hunter3pw"):
        assert secret not in text
    sasl = next(t for t in diff.tables if t.ref.endswith("sasl_passwd"))
    (entry,) = sasl.entries
    assert entry.name == "[smtp.example.net]:587"
    assert entry.old is not None
    assert entry.new is not None
    assert entry.old.startswith("sha256:")
    assert entry.new.startswith("sha256:")
    assert entry.old != entry.new


def test_two_directories_with_the_same_content_do_not_differ(tmp_path: Path) -> None:
    first = make_config(tmp_path / "one")
    second = tmp_path / "two"
    shutil.copytree(first, second)
    diff = diff_snapshots(build_snapshot(str(first)), build_snapshot(str(second)))
    assert diff.empty, diff_lines(diff)


def test_change_inputs_and_facts(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    old = build_snapshot(str(directory))
    (directory / "main.cf").write_text(MAIN_CF + "default_process_limit = 50\n")
    (directory / "master.cf").write_text(
        "smtp      inet  n       -       n       -       -       smtpd\n"
        "  -o max_idle=10s -o max_use=5\n"
        "pickup    unix  n       -       n       60?     1       /usr/lib/postfix/sbin/pickup\n"
    )
    (directory / "virtual").write_text("a@example.com c@example.net\n")
    new = build_snapshot(str(directory))
    inputs = change_inputs(diff_snapshots(old, new), new)
    assert "default_process_limit" in inputs.parameters
    assert inputs.services == ("smtp/inet", "pickup/unix")
    (edit,) = inputs.tables
    assert edit.ref == f"hash:{directory}/virtual"
    assert edit.keys_changed == ("a@example.com",)
    assert edit.source_changed
    assert edit.parameters == ("virtual_alias_domains", "virtual_alias_maps")  # default $ref
    assert set(inputs.files) == {
        str(directory / "main.cf"),
        str(directory / "master.cf"),
        str(directory / "virtual"),
    }
    smtp, pickup = inputs.facts.services
    assert (smtp.daemon, smtp.max_idle, smtp.max_use, smtp.process_limit) == ("smtpd", 10.0, 5, 50)
    assert (pickup.daemon, pickup.wakeup, pickup.process_limit, pickup.max_idle) == (
        "pickup",
        60,
        1,
        100.0,
    )
    assert inputs.facts == facts_from_snapshot(new)
    assert inputs.facts.parameters["smtpd_banner"] == "mx.example.com ESMTP"
    assert inputs.summary == tuple(diff_lines(diff_snapshots(old, new)))


def test_a_newly_referenced_table_demands_postmap_only_without_a_fresh_compiled_file(
    tmp_path: Path,
) -> None:
    directory = make_config(tmp_path / "pf")
    for name, source_at, compiled_at in (("access", 1000.0, 2000.0), ("stale", 3000.0, 2000.0)):
        (directory / name).write_text("192.0.2.1 REJECT\n")
        (directory / f"{name}.db").write_bytes(b"stand-in for a db")
        os.utime(directory / name, (source_at, source_at))
        os.utime(directory / f"{name}.db", (compiled_at, compiled_at))
    old = build_snapshot(str(directory))
    _edit(
        directory / "main.cf",
        "smtpd_banner = $myhostname ESMTP",
        "smtpd_banner = $myhostname ESMTP\nsmtpd_client_restrictions = "
        "check_client_access hash:$config_directory/access, "
        "check_client_access hash:$config_directory/stale",
    )
    new = build_snapshot(str(directory))
    diff = diff_snapshots(old, new)
    added = {t.ref: t for t in diff.tables if t.kind == "added"}
    assert added[f"hash:{directory}/access"].new_freshness == "fresh"
    assert added[f"hash:{directory}/stale"].new_freshness == "stale"
    edits = {t.ref: t for t in change_inputs(diff, new).tables}
    fresh, stale = edits[f"hash:{directory}/access"], edits[f"hash:{directory}/stale"]
    assert fresh.source_changed and fresh.compiled_changed  # arrives compiled: no postmap
    assert stale.source_changed and not stale.compiled_changed  # still needs postmap


def test_a_table_no_longer_referenced_demands_no_postmap(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    old = build_snapshot(str(directory))
    _edit(directory / "main.cf", "virtual_alias_maps = hash:$config_directory/virtual\n", "")
    new = build_snapshot(str(directory))
    diff = diff_snapshots(old, new)
    (removed,) = [t for t in diff.tables if t.kind == "removed"]
    (edit,) = [t for t in change_inputs(diff, new).tables if t.ref == removed.ref]
    assert not edit.source_changed and not edit.compiled_changed


def test_a_table_too_large_for_keys_is_compared_by_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over KEY_DIFF_LIMIT lines no entry is parsed or kept; the diff still says what
    changed, and a small table next to it keeps its key-level diff."""
    from pfwatch.config import snapshot as snapshot_module  # noqa: PLC0415

    monkeypatch.setattr(snapshot_module, "KEY_DIFF_LIMIT", 100)
    conf = tmp_path / "pf"
    conf.mkdir()
    (conf / "main.cf").write_text(
        f"virtual_alias_maps = hash:{conf}/big\ntransport_maps = hash:{conf}/small\n"
    )
    (conf / "master.cf").write_text("smtp inet n - n - - smtpd\n")
    big = "".join(f"user{n}@example.com dest{n}@example.net\n" for n in range(101))
    (conf / "big").write_text(big)
    (conf / "small").write_text("example.com smtp:[relay]\n")
    before = build_snapshot(str(conf))
    table = next(t for t in before.tables if t.ref.ref.endswith("/big"))
    assert table.entries == {} and table.entries_skipped == 101
    assert snapshot_from_json(json.loads(json.dumps(snapshot_to_json(before)))) == before
    (conf / "big").write_text(big.replace("dest7@", "other7@"))
    (conf / "small").write_text("example.com smtp:[relay2]\n")
    diff = diff_snapshots(before, build_snapshot(str(conf), before))
    changes = {t.ref.rpartition("/")[2]: t for t in diff.tables}
    assert changes["big"].source_changed and changes["big"].entries == ()
    assert changes["big"].lines_not_compared == 101
    assert [e.name for e in changes["small"].entries] == ["example.com"]
    text = "\n".join(diff_lines(diff))
    assert "big: source changed (101 lines, too many to compare key by key)" in text
