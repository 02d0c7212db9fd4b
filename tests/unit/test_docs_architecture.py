"""docs/ARCHITECTURE.md is the map: every package and top-level module of pfwatch is on it,
and it names the data flow of every front."""

from __future__ import annotations

from pathlib import Path

import pfwatch

ROOT = Path(pfwatch.__file__).resolve().parent
MAP = ROOT.parent / "docs" / "ARCHITECTURE.md"


def test_every_package_and_top_level_module_is_on_the_map() -> None:
    text = MAP.read_text(encoding="utf-8")
    packages = {
        f"pfwatch/{p.name}/"
        for p in ROOT.iterdir()
        if p.is_dir() and (p / "__init__.py").is_file() and p.name != "grammars"
    }
    modules = {f"pfwatch/{p.name}" for p in ROOT.glob("*.py")}
    assert sorted(name for name in packages | modules if f"`{name}`" not in text) == []
    assert "`grammars/`" in text


def test_the_map_gives_the_data_flow_of_every_front() -> None:
    text = MAP.read_text(encoding="utf-8")
    for front in ("watch", "explain", "check", "wait", "lab"):
        assert f"- **{front}** (" in text, front
