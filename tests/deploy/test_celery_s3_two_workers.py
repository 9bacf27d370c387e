"""Distributed runs without a shared volume: two Celery workers, each with its own AIRFLOW_HOME and temp dir
(they share no directory), run files on S3 (a moto S3 server on 127.0.0.1, CREATOR_SYNC_DATA_URL=s3://...),
the state store in PostgreSQL and the rate limiter in Redis. One creator_sync run completes with every
valid creator stored once and 0 duplicate events, and both workers ran its tasks."""

from __future__ import annotations

import json
import re
import time

import pytest

from creator_sync.sync.run_context import run_dir_name
from devtools.airflow_stack import sandbox_connections
from devtools.celery_stack import CeleryStack, missing_services
from devtools.s3_server import MotoS3Server
from devtools.sandbox.launcher import SandboxServers

pytestmark = pytest.mark.slow

CREATORS = 300
DAG_ID = "creator_sync"
BUCKET, PREFIX, CONN_ID = "creator-sync-runs", "prod", "creator_sync_s3"
WORKERS = ("celery worker-0", "celery worker-1")


@pytest.fixture(scope="module")
def postgres_and_redis():
    missing = missing_services()
    if missing:
        pytest.skip("the CeleryExecutor stack needs PostgreSQL and Redis: " + "; ".join(missing))


def tasks_in(worker_log: str) -> set[str]:
    """The creator_sync task ids a worker's log says it executed."""
    return set(re.findall(r"task_id='?([a-z_]+)'?", worker_log)) & {
        "fetch_creators",
        "fetch_contents",
        "fetch_account_shard",
        "transform",
        "upsert",
        "report",
    }


def test_two_workers_sharing_no_directory_sync_through_s3(postgres_and_redis, tmp_path, capsys):
    started = time.monotonic()
    with MotoS3Server() as s3, SandboxServers(creators=CREATORS) as sb:
        s3.create_bucket(BUCKET)
        extra = {
            **sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url),
            **s3.connection_env(CONN_ID),
            "CREATOR_SYNC_DATA_URL": f"s3://{BUCKET}/{PREFIX}",
            "CREATOR_SYNC_DATA_CONN_ID": CONN_ID,
        }
        stack = CeleryStack(tmp_path / "airflow", extra, workers=2, worker_concurrency=2)
        with stack:
            api = stack.api
            api.wait_for_dag(DAG_ID, timeout=120)
            logical_date = api._call("GET", f"/dags/{DAG_ID}")["next_dagrun_logical_date"]
            run_id = api.trigger(DAG_ID, logical_date=logical_date)
            api.unpause(DAG_ID)
            deadline = time.monotonic() + 300
            while (state := api.run_state(DAG_ID, run_id)) not in ("success", "failed"):
                stack.check_alive()
                assert time.monotonic() < deadline, f"run still {state}: {api.task_states(DAG_ID, run_id)}"
                time.sleep(3)
            logs = {w: stack.log_tail(w, chars=500_000) for w in WORKERS}
            assert state == "success", f"{api.task_states(DAG_ID, run_id)}\n" + "\n".join(
                f"{w} log tail:\n{log[-3000:]}" for w, log in logs.items()
            )
            report = api.xcom(DAG_ID, run_id, "report")
            env = stack.env
            homes = [stack.worker_home(w) for w in WORKERS]
        keys = s3.keys(BUCKET, f"{PREFIX}/runs/{run_dir_name(run_id)}/")
        insightiq, insider = sb.stats("insightiq"), sb.stats("insider")

    assert env["CREATOR_SYNC_STATE_URL"].startswith("postgresql://")
    assert env["CREATOR_SYNC_RATE_LIMIT_BACKEND"].startswith("redis://")
    # the workers shared no directory: separate homes, and no run file on any local disk
    assert len({str(h) for h in homes} | {str(stack.home)}) == 3
    for home in (*homes, stack.home):
        assert not (home / "data").exists(), f"run files on a local disk: {home / 'data'}"
    ran = {w: tasks_in(log) for w, log in logs.items()}
    assert all(ran.values()), f"a worker ran no creator_sync task: {ran}"
    # the run's files are on S3 and the sync is complete, with nothing sent twice
    names = {k.split("/runs/", 1)[1].split("/", 1)[1] for k in keys}
    assert {"fetch/users/users.parquet", "transform/users.jsonl", "report.md"} <= names, sorted(names)
    assert report["reconciled"], report["text"]
    assert report["fetched_creators"] == CREATORS, report
    assert insider["users_stored"] == CREATORS - insightiq["invalid_creators"], (insider, insightiq)
    assert insider["duplicate_events"] == 0, insider

    with capsys.disabled():
        print(
            f"\ncelery x2 + s3: run {run_id} in {time.monotonic() - started:.0f}s total; tasks per worker "
            f"{json.dumps({w: sorted(t) for w, t in ran.items()})}; {len(keys)} run files on S3; "
            f"users_stored {insider['users_stored']}, duplicate_events {insider['duplicate_events']}"
        )
