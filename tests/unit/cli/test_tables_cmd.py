"""``pfwatch tables``: freshness of every referenced table, missing files."""

from __future__ import annotations

import json
from pathlib import Path

from _sample_config import make_config

from pfwatch.testing.cli import run_pfwatch


def test_tables_command_lists_freshness_and_reports_missing_files(tmp_path: Path) -> None:
    directory = make_config(tmp_path / "pf")
    (directory / "nets").unlink()
    result = run_pfwatch("tables", "--json", "--config-dir", str(directory))
    assert result.exit_code == 0
    rows = {row["ref"]: row for row in json.loads(result.stdout)}
    virtual = rows[f"hash:{directory}/virtual"]
    assert virtual["freshness"] == "not-compiled"
    assert virtual["compiled"] == [f"{directory}/virtual.db"]
    assert virtual["parameters"] == ["virtual_alias_domains", "virtual_alias_maps"]
    nets = rows[f"{directory}/nets"]
    assert (nets["freshness"], nets["error"]) == ("missing", "no such file")
    env = run_pfwatch("tables", env={"MAIL_CONFIG": str(directory)})
    assert env.exit_code == 0
    assert "virtual" in env.stdout
