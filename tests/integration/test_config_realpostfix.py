"""``pfwatch diff`` and ``pfwatch tables`` on a real, running Postfix instance.

The fixture starts a private Postfix; the test gives it a hash table, copies the
configuration as it is, then edits main.cf and the table. ``pfwatch diff`` must report
exactly those edits and ``pfwatch tables`` must say the table's source is newer than its
``.db`` (Postfix agrees: a lookup still returns the old values).
After ``postmap`` the table is fresh and the diff shows only the rebuilt ``.db``.
Modification times are set with os.utime, so the ordering never depends on the clock's
granularity.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pfwatch.instance.local import PostfixInstance
from pfwatch.testing.cli import run_pfwatch

pytestmark = pytest.mark.postfix

TABLE = "virtual"
ORIGINAL = "alice@example.com alice@mailbox.test\nbob@example.com bob@mailbox.test\n"
EDITED = (
    "alice@example.com alice@elsewhere.test\n"
    "bob@example.com bob@mailbox.test\n"
    "carol@example.com carol@mailbox.test\n"
)


def _pfwatch(*args: str) -> tuple[int, Any]:
    done = run_pfwatch(*args)
    assert done.exit_code in (0, 1), done.stderr
    assert done.stdout.strip(), f"no output (status {done.exit_code}): {done.stderr}"
    return done.exit_code, json.loads(done.stdout)


def _set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def _postconf_x(pf: PostfixInstance, directory: Path) -> dict[str, str]:
    """``postconf -x`` of every parameter, with the directory's own path neutralised."""
    text = pf.run(["postconf", "-c", str(directory), "-x"]).stdout
    values = {}
    for line in text.splitlines():
        name, _sep, value = line.partition(" =")
        values[name] = value.strip().replace(str(directory), "$config_directory")
    return values


def _postconf_x_changes(pf: PostfixInstance, old: Path, new: Path) -> set[str]:
    """Parameters whose expanded value differs, according to the real postconf."""
    before, after = _postconf_x(pf, old), _postconf_x(pf, new)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    return changed - {"process_id"}  # postconf's own pid, not configuration


def _query(pf: PostfixInstance, key: str) -> subprocess.CompletedProcess[str]:
    table = pf.config_dir / TABLE
    return pf.run(["postmap", "-c", str(pf.config_dir), "-q", key, f"hash:{table}"], check=False)


@pytest.mark.postfix_options(max_idle=2)
def test_diff_and_tables_report_exactly_the_edits(
    postfix_instance: PostfixInstance, tmp_path: Path
) -> None:
    pf = postfix_instance
    config = pf.config_dir
    source, compiled = config / TABLE, config / f"{TABLE}.db"
    pf.write_file(TABLE, ORIGINAL)
    pf.edit_main_cf({"virtual_alias_maps": f"hash:$config_directory/{TABLE}"})
    pf.postmap(TABLE)
    base = compiled.stat().st_mtime
    _set_mtime(source, base - 10)
    assert pf.postconf("-xh", "virtual_alias_maps").strip() == f"hash:{config}/{TABLE}"

    code, rows = _pfwatch("tables", "--json", "--config-dir", str(config))
    table = {row["ref"]: row for row in rows}[f"hash:{config}/{TABLE}"]
    assert (code, table["freshness"], table["entries"]) == (0, "fresh", 2)
    assert "virtual_alias_maps" in table["parameters"]

    before = tmp_path / "before"
    shutil.copytree(config, before, symlinks=True)
    code, document = _pfwatch("diff", "--json", str(before), str(config))
    assert (code, document["empty"]) == (0, True), document

    # The edits: one main.cf parameter and two table entries, source newer than .db.
    pf.edit_main_cf({"smtpd_helo_required": "yes"})
    pf.write_file(TABLE, EDITED)
    _set_mtime(source, base + 200)

    code, rows = _pfwatch("tables", "--json", "--config-dir", str(config))
    table = {row["ref"]: row for row in rows}[f"hash:{config}/{TABLE}"]
    assert table["freshness"] == "stale"
    assert table["source_mtime"] == base + 200
    assert table["compiled_mtime"] == base
    stale_lookup = _query(pf, "carol@example.com")
    assert stale_lookup.returncode == 1  # the .db does not have the new key yet
    assert _query(pf, "alice@example.com").stdout.strip() == "alice@mailbox.test"

    code, document = _pfwatch("diff", "--json", str(before), str(config))
    assert code == 1
    raw_changes = [p for p in document["parameters"] if p["old_raw"] != p["new_raw"]]
    assert [(p["name"], p["kind"], p["old_raw"], p["new_raw"]) for p in raw_changes] == [
        ("smtpd_helo_required", "added", None, "yes")
    ]
    expanded_only = {p["name"]: p for p in document["parameters"] if p not in raw_changes}
    assert expanded_only["postscreen_helo_required"]["new_expanded"] == "yes"
    assert {tuple(p["via"]) for p in expanded_only.values()} == {("smtpd_helo_required",)}
    assert set(expanded_only) | {"smtpd_helo_required"} == _postconf_x_changes(pf, before, config)
    assert document["services"] == []
    (changed,) = document["tables"]
    assert changed["ref"] == f"hash:$config_directory/{TABLE}"
    assert {(e["name"], e["old"], e["new"]) for e in changed["entries"]} == {
        ("alice@example.com", "alice@mailbox.test", "alice@elsewhere.test"),
        ("carol@example.com", None, "carol@mailbox.test"),
    }
    assert (changed["old_freshness"], changed["new_freshness"]) == ("fresh", "stale")
    assert (changed["source_changed"], changed["compiled_changed"]) == (True, False)

    # postmap: Postfix sees the new entries, pfwatch says fresh, the diff shows the rebuild.
    after_edit = tmp_path / "after_edit"
    shutil.copytree(config, after_edit, symlinks=True)
    pf.postmap(TABLE)
    _set_mtime(compiled, base + 300)
    assert _query(pf, "carol@example.com").stdout.strip() == "carol@mailbox.test"

    code, rows = _pfwatch("tables", "--json", "--config-dir", str(config))
    table = {row["ref"]: row for row in rows}[f"hash:{config}/{TABLE}"]
    assert table["freshness"] == "fresh"
    code, document = _pfwatch("diff", "--json", str(after_edit), str(config))
    assert code == 1
    assert document["parameters"] == []
    (rebuilt,) = document["tables"]
    assert rebuilt["entries"] == []
    assert (rebuilt["compiled_changed"], rebuilt["source_changed"]) == (True, False)
    assert (rebuilt["old_freshness"], rebuilt["new_freshness"]) == ("stale", "fresh")
