"""Airflow's constraints (constraints/constraints-3.11.txt), the locks resolved under them, the package's
dependency ranges, and an install of the built wheel into a fresh Airflow venv by pip's resolver."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from deploy_support import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

CONSTRAINTS = REPO / "constraints" / "constraints-3.11.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)", re.M)


def pins(text: str) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def disagreements(lock: str, constraints: str) -> dict[str, tuple[str, str]]:
    """Packages both name at different versions: name -> (lock, constraints)."""
    locked, constrained = pins(lock), pins(constraints)
    return {
        name: (locked[name], constrained[name])
        for name in sorted(locked.keys() & constrained.keys())
        if locked[name] != constrained[name]
    }


@pytest.fixture(scope="module")
def constraints_text() -> str:
    return CONSTRAINTS.read_text()


def test_the_constraints_are_airflow_s_for_the_pinned_version(constraints_text):
    first = constraints_text.splitlines()[0]
    assert first.startswith("# creator-sync: "), (
        "the first line says whether the file is published or generated"
    )
    constrained = pins(constraints_text)
    assert len(constrained) > 200, "too few pins for an Airflow constraints file"
    locked = pins((REPO / "requirements.lock").read_text())
    assert constrained["apache-airflow"] == locked["apache-airflow"]
    # the providers the official image ships are pinned, so installing on top of it moves none of them
    for provider in ("cncf-kubernetes", "hashicorp", "openlineage", "slack", "git", "celery", "fab"):
        assert f"apache-airflow-providers-{provider}" in constrained, provider


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_lock_agrees_with_the_constraints(lock, constraints_text):
    text = (REPO / lock).read_text()
    assert len(pins(text).keys() & pins(constraints_text).keys()) > 100, "the locks share too few packages"
    assert disagreements(text, constraints_text) == {}, (
        f"`make lock` resolves {lock} under {CONSTRAINTS.name}"
    )
    assert "-c constraints/constraints-3.11.txt" in text.splitlines()[1], (
        f"{lock} was not compiled against it"
    )


def test_the_agreement_check_finds_a_moved_version(constraints_text):
    lock = (REPO / "requirements.lock").read_text()
    moved = re.sub(r"^pandas==\S+", "pandas==0.0.1", lock, flags=re.M)
    assert "pandas" in disagreements(moved, constraints_text)
    assert disagreements("Pandas[performance]==0.0.1\n", "pandas==3.0.5\n") == {"pandas": ("0.0.1", "3.0.5")}


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_the_dependency_ranges_admit_the_constrained_versions(constraints_text):
    constrained = pins(constraints_text)
    requirements = [Requirement(r) for r in project()["dependencies"]]
    requirements += [Requirement(r) for extra in project()["optional-dependencies"].values() for r in extra]
    names = {canonicalize_name(r.name) for r in requirements}
    assert "apache-airflow" in names and len(requirements) >= 10
    airflow = next(r for r in requirements if r.name == "apache-airflow")
    assert str(airflow.specifier) in ("<3.4,>=3.3", ">=3.3,<3.4")
    outside = {
        r.name: constrained[canonicalize_name(r.name)]
        for r in requirements
        if canonicalize_name(r.name) in constrained
        and not r.specifier.contains(constrained[canonicalize_name(r.name)])
    }
    assert outside == {}


def test_every_third_party_module_the_package_imports_is_a_declared_dependency():
    """An import the ranges leave out works in this repository's venv and fails in a deployment."""
    from test_package import imported_modules

    declared = {canonicalize_name(Requirement(r).name) for r in project()["dependencies"]}
    declared |= {
        canonicalize_name(Requirement(r).name) for e in project()["optional-dependencies"].values() for r in e
    }
    module_to_dist = {"yaml": "pyyaml", "airflow": "apache-airflow", "redis": "redis"}
    imported = set()
    for path in (REPO / "include" / "creator_sync").rglob("*.py"):
        imported |= {m.split(".")[0] for m in imported_modules(path.read_text())}
    third_party = {
        m for m in imported - set(sys.stdlib_module_names) if m not in ("creator_sync", "__future__")
    }
    missing = {m for m in third_party if canonicalize_name(module_to_dist.get(m, m)) not in declared}
    assert missing == set()


def base_python() -> str:
    return getattr(sys, "_base_executable", sys.executable)


@pytest.mark.slow
def test_a_fresh_airflow_venv_installs_the_wheel_with_pip_and_parses_the_dags(tmp_path):
    """As a team with its own Airflow does it: apache-airflow from the constraints, then the wheel by pip."""
    uv = str(Path(sys.executable).parent / "uv")
    airflow_version = pins(CONSTRAINTS.read_text())["apache-airflow"]
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        REPO / "include" / "creator_sync",
        tmp_path / "include" / "creator_sync",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    run = lambda *cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kw)  # noqa: E731
    built = run(uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(tmp_path))
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("creator_sync-*.whl")

    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    assert run(base_python(), "-m", "venv", str(venv)).returncode == 0
    airflow = run(
        uv, "pip", "install", "--python", python, f"apache-airflow=={airflow_version}", "-c", str(CONSTRAINTS)
    )
    assert airflow.returncode == 0, airflow.stderr[-3000:]
    # pip's resolver, as docs/install.md has teams do it
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CREATOR_SYNC_", "AIRFLOW", "PYTHONPATH"))
    }
    installed = run(
        python, "-m", "pip", "install", "--disable-pip-version-check",
        f"apache-airflow=={airflow_version}", str(wheel), "-c", str(CONSTRAINTS), env=env,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    check = run(python, "-m", "pip", "check", env=env)
    assert check.returncode == 0, check.stdout

    script = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)\n"
        "print(json.dumps({'errors': {k: str(v)[-2000:] for k, v in bag.import_errors.items()},"
        " 'dags': sorted(bag.dag_ids)}))\n"
    )
    env |= {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    parsed = run(python, "-c", script, str(REPO / "dags"), env=env, cwd=tmp_path)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    result = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert len(result["dags"]) >= len(list((REPO / "dags").glob("[!_]*.py")))
    plugins = run(
        python, "-c", "import runpy, sys; [runpy.run_path(p) for p in sys.argv[1:]]",
        *map(str, sorted((REPO / "plugins").glob("*.py"))), env=env, cwd=tmp_path,
    )  # fmt: skip
    assert plugins.returncode == 0, plugins.stderr[-3000:]
