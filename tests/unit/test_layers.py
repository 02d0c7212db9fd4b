"""Layers point one way: the import graph of the pfwatch package, read from the source.

Every ``import`` counts, also those inside functions (a lazy import hides a cycle from the
interpreter, not from the design). Fails on: any cycle between pfwatch modules; product
code importing :mod:`pfwatch.testing`; a sink importing the CLI; anything below the CLI
importing it (the test helpers in :mod:`pfwatch.testing` may: they drive it).
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
