"""Layers point one way: the import graph of the pfwatch package, read from the source.

Every ``import`` counts, also those inside functions (a lazy import hides a cycle from the
interpreter, not from the design). Fails on: any cycle between pfwatch modules; product
code importing :mod:`pfwatch.testing`; a sink importing the CLI; anything below the CLI
importing it (the test helpers in :mod:`pfwatch.testing` may: they drive it); a module at
the package top level that is neither an entry point nor shared vocabulary, and shared
vocabulary that imports anything but shared vocabulary.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pfwatch

ROOT = Path(pfwatch.__file__).resolve().parent


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in root.rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """pfwatch modules that ``name`` (at ``path``) imports, resolved to modules."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
    return {m for m in found if m in known and m != name}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of the package at ``root`` it imports."""
    modules = _modules(root)
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


ENTRY_POINTS = frozenset({"pfwatch", "pfwatch.__main__"})
"""The package itself (its version) and ``python -m pfwatch``."""
VOCABULARY = frozenset({"pfwatch.events", "pfwatch.errors", "pfwatch.settings"})
"""Shared by every layer: the events and findings, the error ladder with its exit
statuses, the settings. Everything else lives in the package of the layer that owns it."""


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    assert "pfwatch.core.fold" in graph["pfwatch.service.loop"] or any(
        _in(m, "pfwatch.core") for m in graph["pfwatch.service.loop"]
    )
    assert "pfwatch.errors" in graph["pfwatch.cli.exit_status"]


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (module names), or [] when there is none."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


def test_no_import_cycle_between_pfwatch_modules() -> None:
    assert cycle(import_graph()) == []


def test_product_code_never_imports_the_test_fixtures() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if not _in(module, "pfwatch.testing")
        for target in targets
        if _in(target, "pfwatch.testing")
    )
    assert offenders == []


def test_the_cli_is_on_top() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if not _in(module, "pfwatch.cli")
        and module != "pfwatch.__main__"
        and not _in(module, "pfwatch.testing")  # the test runner drives the CLI
        for target in targets
        if _in(target, "pfwatch.cli")
    )
    assert offenders == []


def test_no_sink_imports_the_cli() -> None:
    graph = import_graph()
    sinks = {m: t for m, t in graph.items() if _in(m, "pfwatch.sinks")}
    assert sinks, "no sink modules found"
    assert {m: sorted(t) for m, t in sinks.items() if any(_in(x, "pfwatch.cli") for x in t)} == {}


def top_level_modules(root: Path = ROOT) -> set[str]:
    """Modules of the package at ``root`` that are files directly in it."""
    return {name for name, path in _modules(root).items() if path.parent == root}


def test_the_top_level_holds_only_entry_points_and_shared_vocabulary() -> None:
    assert top_level_modules() - ENTRY_POINTS - VOCABULARY == set()
    assert top_level_modules() >= VOCABULARY


def test_the_shared_vocabulary_imports_only_shared_vocabulary() -> None:
    graph = import_graph()
    assert {m: sorted(graph[m] - VOCABULARY) for m in VOCABULARY if graph[m] - VOCABULARY} == {}


def test_a_new_top_level_module_is_seen(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    for name in ("__init__.py", "__main__.py", "events.py", "clock.py", "sub/__init__.py"):
        (root / name).write_text("")
    (root / "sub" / "clock.py").write_text("")
    assert top_level_modules(root) == {"pkg", "pkg.__main__", "pkg.events", "pkg.clock"}


def test_a_lazy_import_cycle_and_relative_imports_are_seen(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "a.py").write_text("from pkg.b import thing\n")
    (root / "b.py").write_text("def thing():\n    from .sub import a\n    return a\n")
    graph = import_graph(root)
    assert graph["pkg.sub.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.sub.a"}
    assert sorted(set(cycle(graph))) == ["pkg.b", "pkg.sub.a"]
