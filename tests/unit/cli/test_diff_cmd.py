"""``pfwatch diff``: exit status and JSON document."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _sample_config import make_config

from pfwatch.testing.cli import run_pfwatch


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_diff_command_exit_status_and_json(tmp_path: Path) -> None:
    first = make_config(tmp_path / "one")
    second = tmp_path / "two"
    shutil.copytree(first, second)
    same = run_pfwatch("diff", str(first), str(second))
    assert same.exception is None
    assert same.exit_code == 0
    assert same.stdout == ""
    _edit(second / "main.cf", "mx.example.com", "mx9.example.com")
    differs = run_pfwatch("diff", "--json", str(first), str(second))
    assert differs.exit_code == 1
    document = json.loads(differs.stdout)
    assert document["empty"] is False
    assert "myhostname" in [p["name"] for p in document["parameters"]]
