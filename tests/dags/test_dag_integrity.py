"""Every DAG file imports cleanly and follows the project's conventions."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from creator_sync.settings import pools_file

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
POOLS = json.loads(pools_file().read_text())

# What a task's code mentions -> the pool it must run in. The hooks are the only way to a vendor API.
VENDOR_CALLS = {
    "InsightIQ": "insightiq_api",
    "upsert": "insider_upsert",
    "send_users": "insider_upsert",
    "get_profile": "insider_profile",
    "Profile": "insider_profile",
    "WebPush": "insider_web_push",
    "Anonymize": "insider_data_governance",
}
HEAVY_MODULES = ("pandas", "pyarrow", "httpx", "phonenumbers", "creator_sync.pipeline")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR), safe_mode=False)


def test_dag_files_exist():
    assert DAG_FILES, "dags/ holds no DAG file"


def test_every_dag_file_imports(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{f}: {e}" for f, e in dagbag.import_errors.items())
    files_with_dags = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert files_with_dags == {p.name for p in DAG_FILES}


def test_every_dag_has_owner_tags_and_backoff_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries={task.retries}"
            assert task.retry_exponential_backoff, f"{dag_id}.{task.task_id} lacks exponential backoff"
            assert task.retry_delay >= timedelta(seconds=5)


def test_every_task_has_an_execution_timeout(dagbag):
    """A stuck task is stopped (and retried) instead of holding its pool slot forever."""
    checked = 0
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            checked += 1
            assert task.execution_timeout, f"{dag_id}.{task.task_id} has no execution_timeout"
            assert timedelta(minutes=1) <= task.execution_timeout <= timedelta(hours=24), (
                task.execution_timeout
            )
    assert checked


def _task_code(task) -> str:
    callable_ = getattr(task, "python_callable", None)
    parts = [type(task).__name__]
    if callable_ is not None:
        parts.append(inspect.getsource(callable_))
    return "\n".join(parts)


def test_tasks_that_call_a_vendor_api_name_its_pool(dagbag):
    checked = 0
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            code = _task_code(task)
            wanted = {pool for marker, pool in VENDOR_CALLS.items() if marker in code}
            if not wanted:
                continue
            checked += 1
            assert task.pool in wanted, f"{dag_id}.{task.task_id} calls {wanted} but runs in pool {task.pool}"
            assert task.pool in POOLS, f"{task.pool} is not in include/creator_sync/resources/pools.json"
    assert checked, "no task calls a vendor API: the pool check would be vacuous"


# One interpreter imports what every DAG file pays anyway, then forks a child per DAG file: each child starts
# from the same modules, runs its file and names the heavy modules the file added (one Airflow import for all
# files instead of one per file).
TOP_LEVEL_PROBE = """
import json, os, runpy, sys
dags_dir, plugins_dir, heavy_modules, files = json.loads(sys.argv[1])
sys.path[:0] = [dags_dir, plugins_dir]
from airflow.sdk import DAG, Asset, Param, dag, task  # what every DAG file pays anyway
before = set(sys.modules)
found = {}
for path in files:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            runpy.run_path(path)
            out = ",".join(m for m in heavy_modules if m in sys.modules and m not in before)
        except BaseException as exc:
            out = f"ERROR {exc!r}"
        os.write(write_end, out.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        found[path] = pipe.read()
    os.waitpid(pid, 0)
print("RESULT " + json.dumps(found))
"""


@pytest.fixture(scope="module")
def top_level_imports(tmp_path_factory) -> dict[str, str]:
    """{DAG file: the heavy modules its top level imports, comma-separated, or ERROR and the exception};
    one more file, ``heavy_control.py``, imports pandas at its top level (the probe's control)."""
    control = tmp_path_factory.mktemp("dags") / "heavy_control.py"
    control.write_text("import pandas\n")
    files = [str(p) for p in (*DAG_FILES, control)]
    args = json.dumps([str(DAGS_DIR), str(REPO / "plugins"), HEAVY_MODULES, files])
    out = subprocess.run([sys.executable, "-c", TOP_LEVEL_PROBE, args], capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_top_level_stays_light(dag_file, top_level_imports):
    """Parse time is dominated by top-level imports; heavy libraries belong inside tasks.

    The parse time itself is measured by `make bench` (dag_parse_s_max), not asserted here.
    """
    heavy = top_level_imports[str(dag_file)]
    assert not heavy.startswith("ERROR"), f"{dag_file.name} failed to import: {heavy}"
    assert heavy == "", f"{dag_file.name} imports {heavy} at parse time; move the import into the task"


def test_the_top_level_probe_names_a_heavy_import(top_level_imports):
    (control,) = [heavy for path, heavy in top_level_imports.items() if path.endswith("heavy_control.py")]
    assert "pandas" in control.split(","), control


def test_every_task_uses_the_one_vendor_retry_policy(dagbag):
    from creator_sync.retry import VENDOR_RETRY_POLICY

    checked = 0
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            checked += 1
            assert task.retry_policy is VENDOR_RETRY_POLICY, f"{dag_id}.{task.task_id} has another policy"
    assert checked


def test_no_dag_file_defines_its_own_fail_fast_wrapper_or_pool_defaults():
    for path in DAG_FILES:
        text = path.read_text()
        assert "fail_fast" not in text, f"{path.name}: use creator_sync.retry.VENDOR_RETRY_POLICY"
        assert "audit.defaults" not in text, f"{path.name}: pools come from creator_sync.limits"
