"""The package's shape: short functions (a newcomer reads one screen at a time)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "include" / "creator_sync"
MAX_LINES = 60


def long_functions(source: str, name: str = "<source>") -> list[str]:
    tree = ast.parse(source)
    return [
        f"{name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]


def test_no_function_of_the_package_is_over_60_lines():
    found = [f for path in sorted(PACKAGE.rglob("*.py")) for f in long_functions(path.read_text(), str(path))]
    assert found == []


def test_the_check_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(f"def f():\n{body}\n") == ["<source>:1 f (61 lines)"]
