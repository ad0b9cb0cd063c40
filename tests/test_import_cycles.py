"""No module of ``src/aiokatcp`` imports one that imports it back (TYPE_CHECKING included)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, FrozenSet, List, Set

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "aiokatcp"

#: Known cycles (none: a new one fails the test).
KNOWN: Set[FrozenSet[str]] = set()


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str, modules: Set[str]) -> Set[str]:
    """Package modules imported anywhere in the file (function bodies and TYPE_CHECKING too)."""
    package = name.split(".")[:-1] if not path.name == "__init__.py" else name.split(".")
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("aiokatcp."):
                target = node.module[len("aiokatcp.") :]
            else:
                continue
            candidates = [target] + [
                f"{target}.{alias.name}" if target else alias.name for alias in node.names
            ]
            found.update(c for c in candidates if c in modules)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aiokatcp."):
                    target = alias.name[len("aiokatcp.") :]
                    if target in modules:
                        found.add(target)
    found.discard(name)
    found.discard("")
    return found


def _graph() -> Dict[str, Set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, name, modules) for name, path in paths.items()}


def _cycles(graph: Dict[str, Set[str]]) -> List[FrozenSet[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    result: List[FrozenSet[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_server_modules_import_one_way() -> None:
    graph = _graph()
    assert "_server_sched" in graph["_server_base"]
    assert "server" not in set().union(*(graph[m] for m in graph if m.startswith("_server")))


def test_no_import_cycles() -> None:
    cycles = [c for c in _cycles(_graph()) if c not in KNOWN]
    assert cycles == []
