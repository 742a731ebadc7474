"""The package's shape: no import circles, a Qt-free engine, one copy of each shared helper."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "unlearn_studio"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (function-level imports included)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    target = next((c for c in (f"{base}.{alias.name}", base) if c in files), None)
                    if target and target != name:
                        graph[name].add(target)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in files and a.name != name)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), list(graph[start])
    while todo:
        current = todo.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(graph[current])
    return False


def test_no_module_imports_a_module_that_imports_it_back():
    graph = import_graph()
    circles = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if _reaches(graph, b, a)})
    assert circles == []


def test_the_graph_sees_function_level_imports():  # the check above would pass vacuously otherwise
    graph = import_graph()
    assert "unlearn_studio.engine.pipeline" in graph["unlearn_studio.cli_commands"]
    assert "unlearn_studio.engine.jobs" in graph["unlearn_studio.engine.evaluate"]


def test_the_engine_never_imports_qt():
    for path in (PACKAGE / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("PySide6", "pyqtgraph") for n in names), path


def test_evaluation_does_not_depend_on_the_trainer():
    graph = import_graph()
    assert not _reaches(graph, "unlearn_studio.engine.evaluate", "unlearn_studio.engine.trainer")
