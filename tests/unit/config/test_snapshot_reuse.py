"""Snapshots reuse earlier parses (pfwatch.config.snapshot, maincf, mastercf) without
changing what they report: every snapshot equals one built with all memories cleared."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pfwatch.config import maincf, mastercf, references, snapshot
from pfwatch.config.snapshot import SCHEMA, Snapshot, build_snapshot, snapshot_to_json

DEMO_CONFIG = Path(__file__).resolve().parents[3] / "pfwatch" / "demo" / "config"

MAIN_CF = """\
myhostname = mx.example.com
smtpd_banner = $myhostname ESMTP
virtual_alias_maps = hash:$config_directory/virtual
smtp_sasl_password_maps = hash:$config_directory/sasl_passwd
mynetworks = 127.0.0.0/8 $config_directory/nets
"""
MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
submission inet n       -       n       -       -       smtpd
  -o smtpd_sasl_auth_enable=yes
pickup    unix  n       -       n       60      1       pickup
"""


def make_config(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.cf").write_text(MAIN_CF)
    (directory / "master.cf").write_text(MASTER_CF)
    (directory / "virtual").write_text("a@example.com b@example.net\n")
    (directory / "sasl_passwd").write_text("[smtp.example.net]:587 user:TopSecret1\n")
    (directory / "nets").write_text("10.0.0.0/8\n")
    return directory


def forget_everything() -> None:
    snapshot._MAIN_PARSES = snapshot._ParseMemo(snapshot.PARSE_CACHE_SIZE)
    snapshot._MASTER_PARSES = snapshot._ParseMemo(snapshot.PARSE_CACHE_SIZE)
    snapshot._TABLE_PARSES = snapshot._ParseMemo(snapshot.PARSE_CACHE_SIZE)
    snapshot.is_secret_field.cache_clear()
    maincf._parse_assignment.cache_clear()
    mastercf._entry.cache_clear()
    references._table_words.cache_clear()


def from_scratch(directory: Path, previous: Snapshot | None = None) -> Snapshot:
    forget_everything()
    return build_snapshot(str(directory), previous)


def test_edits_after_cached_parses_match_snapshots_from_scratch(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    first = build_snapshot(str(directory))
    again = build_snapshot(str(directory), first)
    assert again == first == from_scratch(directory)

    # a line inserted at the top moves every other line: positions must follow
    (directory / "main.cf").write_text("compatibility_level = 3.6\n" + MAIN_CF)
    (directory / "master.cf").write_text("# a comment\n" + MASTER_CF)
    moved = build_snapshot(str(directory), first)
    assert moved.parameters["compatibility_level"] == "3.6"
    assert [s.line for s in moved.services] == [2, 3, 5]
    assert moved == from_scratch(directory, first)

    # a value changed in the middle of the file, same length
    (directory / "main.cf").write_text(MAIN_CF.replace("mx.example.com", "mx.example.org"))
    changed = build_snapshot(str(directory), moved)
    assert changed.expanded["smtpd_banner"] == "mx.example.org ESMTP"
    assert changed == from_scratch(directory, moved)


def test_a_remembered_syntax_error_is_reported_every_time_until_fixed(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    good = build_snapshot(str(directory))
    (directory / "master.cf").write_text(MASTER_CF + "broken unix -\n")
    (directory / "main.cf").write_text(MAIN_CF + "no equals sign here\n")
    bad = [build_snapshot(str(directory), good) for _ in range(3)]
    for snap in bad:
        assert {(p.path.rsplit("/", 1)[1], p.line) for p in snap.problems} == {
            ("main.cf", 6),
            ("master.cf", 5),
        }
        assert snap.services == good.services  # the last good parse stays in force
        assert snap.files[str(directory / "master.cf")].stale
    assert bad[0] == bad[1] == bad[2]
    (directory / "master.cf").write_text(MASTER_CF)
    (directory / "main.cf").write_text(MAIN_CF)
    fixed = build_snapshot(str(directory), bad[-1])
    assert fixed.problems == ()
    assert fixed.digest == good.digest


def test_to_json_is_the_document_asdict_made(tmp_path: Path) -> None:
    for directory in (make_config(tmp_path / "pf"), DEMO_CONFIG):
        snap = build_snapshot(str(directory))
        assert snap.parsed is not None
        expected = dataclasses.asdict(dataclasses.replace(snap, parsed=None))
        del expected["parsed"]  # what this read parsed is not stored
        expected["schema"] = SCHEMA
        document = snapshot_to_json(snap)
        assert document == expected
        assert json.dumps(document, sort_keys=True) == json.dumps(expected, sort_keys=True)
        assert snapshot.snapshot_from_json(json.loads(json.dumps(document))) == snap


def test_table_edits_after_cached_parses_match_snapshots_from_scratch(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    first = build_snapshot(str(directory))
    (directory / "virtual").write_text("# moved\na@example.com c@example.net\nd@x e@y\n")
    edited = build_snapshot(str(directory), first)
    table = next(t for t in edited.tables if t.ref.ref.endswith("/virtual"))
    assert dict(table.entries) == {"a@example.com": "c@example.net", "d@x": "e@y"}
    assert edited == from_scratch(directory, first)
    (directory / "virtual").write_text("a@example.com b@example.net\n")  # back: cached bytes
    back = build_snapshot(str(directory), edited)
    assert back.tables[0].entries == first.tables[0].entries
    assert back == from_scratch(directory, edited)


def test_only_the_newest_parse_of_a_file_is_remembered() -> None:
    memo: snapshot._ParseMemo[str] = snapshot._ParseMemo(16)
    calls: list[str] = []

    def parse(text: str, path: str) -> str:
        calls.append(text)
        return text.upper()

    for version in range(5):
        assert memo.parse("/t", f"sha{version}", f"v{version}".encode(), parse) == f"V{version}"
    assert memo.parse("/other", "x", b"o", parse) == "O"
    assert memo.parse("/t", "sha4", b"v4", parse) == "V4"  # remembered
    assert len(calls) == 6
    assert sorted(key[0] for key in memo._items) == ["/other", "/t"]
