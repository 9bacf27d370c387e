"""The shipped package: imports nothing from the dev tooling, and its wheel holds only creator_sync."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "include" / "creator_sync"
FORBIDDEN = ("devtools", "tests", "include")


def _is_dynamic_import(node: ast.Call) -> bool:
    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
    first = node.args[0] if node.args else None
    return name in ("import_module", "__import__") and isinstance(getattr(first, "value", None), str)


def imported_modules(source: str) -> set[str]:
    """Every module an AST imports (top level or inside functions), absolute names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.add(node.args[0].value)
    return found


def forbidden_imports(source: str) -> list[str]:
    return sorted(m for m in imported_modules(source) if m.split(".")[0] in FORBIDDEN)


def test_no_module_of_the_package_imports_dev_tooling_or_tests():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 40, "the walk found too few modules: is the package where it should be?"
    offenders = {
        str(path.relative_to(REPO)): bad for path in files if (bad := forbidden_imports(path.read_text()))
    }
    assert offenders == {}


def test_the_import_walk_sees_nested_and_dynamic_imports():
    source = """
import os
def f():
    from devtools.sandbox import launcher
    import tests.conftest
importlib.import_module("include.pipeline")
"""
    assert forbidden_imports(source) == ["devtools.sandbox", "include.pipeline", "tests.conftest"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src")
    # build from a copy, so the checkout gets no build/ or egg-info leftovers
    shutil.copy(REPO / "pyproject.toml", src / "pyproject.toml")
    shutil.copytree(PACKAGE, src / "include" / "creator_sync", ignore=shutil.ignore_patterns("__pycache__"))
    uv = Path(sys.executable).parent / "uv"
    result = subprocess.run(
        [str(uv), "build", "--wheel", "--out-dir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("creator_sync-*.whl")
    return built


def test_the_wheel_holds_only_the_creator_sync_package_and_metadata(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"creator_sync"}
    assert len(dist_info) == 1
    assert "creator_sync/resources/pools.json" in names
    assert "creator_sync/resources/insider_mapping.yaml" in names
    assert "creator_sync/hooks/insightiq.py" in names and "creator_sync/http/limiter/window.py" in names
    assert "creator_sync/ui/templates/overview.html" in names  # the view's pages (package data)
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info.pop()}/entry_points.txt").decode()
    assert "creator_sync.provider:get_provider_info" in entry_points
