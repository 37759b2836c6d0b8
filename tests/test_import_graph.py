"""No import cycles inside the sat2scape package.

Every `import` and `from ... import` in every module counts, at module level or inside a
function (a lazy import still closes a circle: it only moves the failure to run time, where a
half-initialised module raises ImportError or AttributeError). The graph is built from the source
with `ast`, so nothing is imported and the test is fast.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = "sat2scape"


def module_files(root: Path = ROOT / PACKAGE) -> dict[str, Path]:
    """{dotted module name: file} for every .py file of the package (a package is its __init__)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported sat2scape module, line) for every import statement in one module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x`, `from ..files import y`
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import name` imports the submodule pkg.name when there is one, else pkg itself
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, node.lineno))
    return found


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), as a sorted list."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def import_graph() -> dict[str, dict[str, int]]:
    """{module: {imported module: first line}} over the whole package."""
    modules = module_files()
    graph = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imports(name, path, modules):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def test_the_parser_sees_every_kind_of_import(tmp_path):
    """The checker itself: relative, absolute, lazy (in a function) and `from pkg import module`."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "a.py").write_text("import json\nfrom .sub import b\n")
    (root / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (root / "c.py").write_text("from pkg.sub.b import f\n")
    (root / "d.py").write_text("import pkg.c as c\nfrom pkg import sub\n")
    modules = module_files(root)
    graph = {name: {t: line for t, line in imports(name, path, modules)} for name, path in modules.items()}
    assert graph["pkg.a"] == {"pkg.sub.b": 2}
    assert graph["pkg.sub.b"] == {"pkg.a": 2}
    assert graph["pkg.c"] == {"pkg.sub.b": 1}
    assert graph["pkg.d"] == {"pkg.c": 1, "pkg.sub": 2}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b"]]


def test_no_import_cycles_in_the_package():
    graph = import_graph()
    assert "sat2scape.filters.report" in graph and "sat2scape.sources.satellite" in graph
    cycles = find_cycles(graph)
    described = []
    for cycle in cycles:
        edges = [f"{a} imports {b} (line {graph[a][b]})" for a in cycle for b in cycle if b in graph[a]]
        described.append(" | ".join(edges))
    assert not cycles, ("import cycles (move the shared definitions to a module below both, or pass "
                        "them as arguments):\n" + "\n".join(described))
