"""No import cycle: every module of the Airflow layer and of the core imports first in a fresh interpreter, and the
core's import graph (every import, including ``TYPE_CHECKING`` and function-level ones) has no cycle."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import batchkit
import openai_batch

FRESH_IMPORTS = """import importlib, sys
prefix = sys.argv[1]
for name in sys.argv[2:]:
    for loaded in [m for m in sys.modules if m == prefix or m.startswith(prefix + '.')]:
        del sys.modules[loaded]
    importlib.import_module(name)
"""


def _modules(package: object) -> list[str]:
    name = package.__name__
    return [name] + [m.name for m in pkgutil.walk_packages(package.__path__, f"{name}.")]


@pytest.mark.parametrize("package", [openai_batch, batchkit], ids=lambda p: p.__name__)
def test_each_module_imports_first_in_a_fresh_interpreter(package):
    names = _modules(package)
    assert {"openai_batch.attempts", "batchkit.split.splitter"} & set(names)
    command = [sys.executable, "-c", FRESH_IMPORTS, package.__name__, *names]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The core modules ``name`` imports anywhere in its file (``from .x import y`` names module ``x.y`` if any)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names}
    return {m for m in found if m in known and m != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a path that starts and ends at the same module), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            if cycle := visit(target, [*path, node]):
                return cycle
        done.add(node)
        return None

    return next((cycle for node in sorted(graph) if (cycle := visit(node, []))), None)


def test_the_core_import_graph_has_no_cycle():
    root = Path(batchkit.__file__).parent
    files = {
        ".".join(("batchkit", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): path
        for path in root.rglob("*.py")
    }
    graph = {name: _imports(name, path, set(files)) for name, path in files.items()}
    assert graph["batchkit.split.splitter"] and graph["batchkit.split.batchfiles"]  # the graph was read
    assert _cycle(graph) is None


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
