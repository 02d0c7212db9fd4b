"""The wheel ships every package: pyproject's package list names each folder of pfwatch/."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _folders(top: Path) -> set[str]:
    names = set()
    for path in [top, *top.rglob("*")]:
        if path.is_dir() and path.name != "__pycache__" and any(path.iterdir()):
            names.add(".".join(path.relative_to(ROOT).parts))
    return names


def test_every_folder_of_the_package_is_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    # the grammars folder is a symlink: rglob does not follow it, so walk it as well
    found = _folders(ROOT / "pfwatch") | {"pfwatch." + name for name in _folders(ROOT / "grammars")}
    assert sorted(found - listed) == []
    assert sorted(listed - found) == []
