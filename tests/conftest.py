"""Test-wide Airflow settings: a throw-away AIRFLOW_HOME and the project's shared config/airflow.env.

Set before anything imports Airflow, so no test ever touches a developer's own Airflow home.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from devtools.airflow_stack import read_env_file

REPO = Path(__file__).resolve().parents[1]


def _configure_airflow() -> None:
    home = Path(tempfile.mkdtemp(prefix="creator-sync-airflow-home-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    for key, value in read_env_file(REPO / "config" / "airflow.env").items():
        os.environ.setdefault(key, value)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
    os.environ.setdefault("CREATOR_SYNC_DATA_URL", f"file://{home / 'data'}")


_configure_airflow()


@pytest.fixture
def conn_env(monkeypatch):
    """Connections from config/connections.json as AIRFLOW_CONN_* env vars (hosts unused by MockTransport)."""
    from devtools.connections import connection_envs

    def apply(hosts=None, **overrides):
        for key, value in connection_envs(hosts, **overrides).items():
            monkeypatch.setenv(key, value)

    apply()
    return apply


@pytest.fixture(scope="module")
def sandbox():
    """The vendor sandboxes on loopback (devtools.sandbox), one per test module."""
    from devtools.sandbox.launcher import SandboxServers

    with SandboxServers(creators=1000, seed=7) as sb:
        yield sb


@pytest.fixture
def sandbox_env(sandbox, conn_env):
    """AIRFLOW_CONN_* from config/connections.json pointing at the sandbox; stats reset."""
    from devtools.connections import sandbox_hosts

    conn_env(sandbox_hosts(sandbox))
    sandbox.reset()
    return sandbox


@pytest.fixture(autouse=True)
def _fresh_object_stores():
    """Airflow caches an object store per protocol and connection id for the life of the process, and
    creator_sync checks a bucket once per process. Tests in one worker start their own S3 servers under the
    same connection id, so both caches are emptied after each test; otherwise a later test would reach an
    earlier test's (stopped) server."""
    yield
    from airflow.sdk.io import store

    from creator_sync import storage

    store._STORE_CACHE.clear()
    storage._checked_bucket.cache_clear()


# Files that start a whole Airflow (minutes each). `make test` hands files to its two workers in collection
# order (xdist --dist loadfile --no-loadscope-reorder; xdist's own reorder puts the files with the most tests
# first); these go first, then the other server-starting (slow) files, so no long file starts near the end
# while the other worker sits idle.
LONGEST_FIRST = (
    "tests/e2e/test_chaos_e2e.py",
    "tests/test_demo.py",
    "tests/e2e/test_creator_sync_e2e.py",
    "tests/deploy/test_celery_deployment.py",
    "tests/e2e/test_offboard_e2e.py",
    "tests/e2e/test_ui_browser.py",
)


def _schedule_rank(item: pytest.Item) -> tuple[int, int]:
    path = item.nodeid.split("::", 1)[0]
    if path in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(path))
    return (1 if item.get_closest_marker("slow") else 2, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_schedule_rank)  # stable: each file keeps its own order
