"""creator_sync.settings: every setting typed and documented, read only there, refused at DAG parse."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from creator_sync import settings
from creator_sync.errors import CreatorSyncConfigError

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "include" / "creator_sync"
SETTINGS_DOC = REPO / "docs" / "settings.md"
# Modules whose environment reads move to creator_sync.settings in their own change (the exactly-once work).
PENDING: set[str] = set()


def test_the_settings_doc_is_generated_from_the_module():
    assert SETTINGS_DOC.read_text() == settings.markdown(), (
        "docs/settings.md is stale: python -m creator_sync.settings > docs/settings.md"
    )


def test_every_setting_has_a_type_a_default_and_a_one_line_doc():
    fields = settings.Settings.model_fields
    assert len(fields) >= 25
    for name, field in fields.items():
        assert field.annotation is not None, name
        assert field.description and "\n" not in field.description, name
        assert settings.allowed(name), name
        assert settings.Settings.env_name(name) == f"CREATOR_SYNC_{name.upper()}"


def env_reads(source: str) -> list[str]:
    """Variables a module reads itself: os.environ.get/[...]/getenv with a literal or a *_ENV name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        target = None
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func in ("os.environ.get", "os.getenv", "environ.get", "os.environ.setdefault"):
                target = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ"):
            target = node.slice
        if target is not None:
            found.append(ast.unparse(target))
    return [name for name in found if "CREATOR_SYNC" in name or name.endswith("_ENV")]


def test_no_module_reads_a_setting_from_the_environment_itself():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "settings.py" or relative in PENDING:
            continue
        if reads := env_reads(path.read_text()):
            offenders[relative] = reads
    assert offenders == {}


def test_the_env_read_check_sees_the_forms_a_module_would_use():
    source = """
import os
A = os.environ.get("CREATOR_SYNC_X", "1")
B = os.getenv(TIMEOUT_ENV)
C = os.environ["CREATOR_SYNC_Y"]
D = os.environ.get("AIRFLOW_HOME")
"""
    assert env_reads(source) == ["'CREATOR_SYNC_X'", "TIMEOUT_ENV", "'CREATOR_SYNC_Y'"]


def test_every_creator_sync_variable_the_package_names_is_a_setting():
    """Code, docstrings and comments of the package name only variables that exist."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        names |= set(re.findall(r"\bCREATOR_SYNC_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    known = {settings.Settings.env_name(name) for name in settings.Settings.model_fields}
    assert len(names) > 20, "the walk found too few variable names"
    assert names - known == set()


def test_a_bad_value_names_the_setting_and_what_is_allowed():
    with pytest.raises(CreatorSyncConfigError) as error:
        settings.load({"CREATOR_SYNC_FETCH_MODE": "weekly", "CREATOR_SYNC_RATE_LIMIT_MARGIN": "0.5"})
    assert "CREATOR_SYNC_FETCH_MODE='weekly' is invalid: allowed is one of incremental, full" in str(
        error.value
    )
    with pytest.raises(CreatorSyncConfigError, match=r"CREATOR_SYNC_RATE_LIMIT_BURST='0' .* >= 1"):
        settings.load({"CREATOR_SYNC_RATE_LIMIT_BURST": "0"})


def test_empty_means_unset_and_secrets_stay_out_of_messages():
    assert (
        settings.load({"CREATOR_SYNC_LOOKBACK_HOURS": "", "CREATOR_SYNC_HTTP_TIMEOUT_S": " "}).lookback_hours
        == 0
    )
    loaded = settings.load({"CREATOR_SYNC_INSIDER_CALLBACK_TOKEN": "s3cret-token"})
    assert "s3cret" not in repr(loaded)
    assert loaded.insider_callback_token.get_secret_value() == "s3cret-token"


def test_a_bad_value_fails_every_dag_at_parse_naming_the_setting(tmp_path):
    script = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)\n"
        "print(json.dumps({k: str(v) for k, v in bag.import_errors.items()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREATOR_SYNC_")}
    env |= {"CREATOR_SYNC_FETCH_MODE": "weekly", "AIRFLOW_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "dags")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    dag_files = sorted(p.name for p in (REPO / "dags").glob("[!_]*.py"))
    assert sorted(Path(f).name for f in errors) == dag_files
    for message in errors.values():
        assert "CREATOR_SYNC_FETCH_MODE='weekly' is invalid: allowed is one of incremental, full" in message
