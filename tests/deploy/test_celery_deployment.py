"""The docker-compose deployment path, proven without Docker, in one stack: CeleryExecutor with the metadata
DB and Celery results on PostgreSQL, the broker and the shared rate-limit budget on Redis
(devtools/celery_stack.py runs scripts/compose-init.sh, then scheduler, dag-processor, api-server and two
`airflow celery worker`s as subprocesses with the compose file's environment). The two workers share no
directory (each has its own AIRFLOW_HOME and temp dir): run files live on S3 (a moto S3 server on 127.0.0.1,
CREATOR_SYNC_DATA_URL=s3://...), the state store in PostgreSQL. One creator_sync run against the sandboxes has
the same outcomes as the embedded run: every valid creator stored once, 0 duplicate events, pools and vendor
limits respected, the run note written through the REST API (worker -> api-server, like production), and
both workers ran its tasks. 150 creators: the run's parallel fetch tasks (which spread it over both workers)
do not depend on the count, and its InsightIQ reads (about one request per two creators at 10 req/s) set
most of the run's time. Fails under CI=true (skips locally) without PostgreSQL or Redis."""

from __future__ import annotations

import json
import re
import time

import pytest
import redis

from creator_sync.sync.run_context import run_dir_name
from devtools.airflow_stack import sandbox_connections
from devtools.celery_stack import (
    CeleryStack,
    max_pool_overlap,
    missing_services,
    pool_slots,
    task_instance_tries,
)
from devtools.s3_server import MotoS3Server
from devtools.sandbox.inspection import limit_violations
from devtools.sandbox.launcher import SandboxServers
from devtools.services import require

pytestmark = pytest.mark.slow

CREATORS = 150
DAG_ID = "creator_sync"
BUCKET, PREFIX, CONN_ID = "creator-sync-runs", "prod", "creator_sync_s3"
WORKERS = ("celery worker-0", "celery worker-1")
TASKS = {"fetch_creators", "fetch_contents", "fetch_account_shard", "transform", "upsert", "report"}


@pytest.fixture(scope="module")
def postgres_and_redis():
    require(missing_services(), "the CeleryExecutor stack (PostgreSQL and Redis)")


def tasks_in(worker_log: str) -> set[str]:
    """The creator_sync task ids a worker's log says it executed."""
    return set(re.findall(r"task_id='?([a-z_]+)'?", worker_log)) & TASKS


def run_once(stack: CeleryStack) -> tuple[str, float]:
    """Trigger one creator_sync run and wait for it to end; (run id, seconds)."""
    api = stack.api
    api.wait_for_dag(DAG_ID, timeout=120)
    # Trigger while paused, at the logical date the scheduler would schedule next: unpausing then finds that
    # run and creates no `scheduled__` one (catchup=False would otherwise add the latest interval's run, and
    # max_active_runs=1 would queue ours behind it). A logical date also gives the manual run a data
    # interval, which creator_sync needs (SyncRun.from_context).
    logical_date = api._call("GET", f"/dags/{DAG_ID}")["next_dagrun_logical_date"]
    assert logical_date, "the dag-processor set no next run for creator_sync"
    run_id = api.trigger(DAG_ID, logical_date=logical_date)
    api.unpause(DAG_ID)
    started = time.monotonic()
    deadline = started + 300
    while (state := api.run_state(DAG_ID, run_id)) not in ("success", "failed"):
        stack.check_alive()
        assert time.monotonic() < deadline, f"run still {state}: {api.task_states(DAG_ID, run_id)}"
        time.sleep(3)
    logs = {w: stack.log_tail(w, chars=500_000) for w in WORKERS}
    assert state == "success", f"{api.task_states(DAG_ID, run_id)}\n" + "\n".join(
        f"{w} log tail:\n{log[-3000:]}" for w, log in logs.items()
    )
    return run_id, time.monotonic() - started


def test_two_celery_workers_sharing_no_directory_sync_through_s3_postgres_and_redis(
    postgres_and_redis, tmp_path, capsys
):
    started = time.monotonic()
    with MotoS3Server() as s3, SandboxServers(creators=CREATORS) as sb:
        s3.create_bucket(BUCKET)
        extra = {
            **sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url),
            **s3.connection_env(CONN_ID),
            "CREATOR_SYNC_DATA_URL": f"s3://{BUCKET}/{PREFIX}",
            "CREATOR_SYNC_DATA_CONN_ID": CONN_ID,
            # daily intervals, as the e2e stacks use: with the hourly default, a test that spans the top of
            # an hour gets a second, scheduled run of the interval that just ended
            "CREATOR_SYNC_SCHEDULE": "0 0 * * *",
        }
        stack = CeleryStack(tmp_path / "airflow", extra, workers=2, worker_concurrency=2)
        stack.extra_env["AIRFLOW_CONN_CREATOR_SYNC_AIRFLOW_API"] = json.dumps(
            {"conn_type": "http", "host": stack.url, "login": "admin", "password": stack.admin_password}
        )
        with stack:
            env = stack.env
            run_id, run_seconds = run_once(stack)
            api = stack.api
            report = api.xcom(DAG_ID, run_id, "report")
            runs = api._call("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
            tries = task_instance_tries(api, DAG_ID, run_id)
            slots = pool_slots(api)
            note = api._call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["note"] or ""
            logs = {w: stack.log_tail(w, chars=500_000) for w in WORKERS}
            limiter_keys = redis.Redis.from_url(env["CREATOR_SYNC_RATE_LIMIT_BACKEND"]).keys(
                "creator_sync:ratelimit:*"
            )
            homes = [stack.worker_home(w) for w in WORKERS]
        keys = s3.keys(BUCKET, f"{PREFIX}/runs/{run_dir_name(run_id)}/")
        insightiq, insider = sb.stats("insightiq"), sb.stats("insider")

    # the compose file's services: Celery on Redis, metadata and state on PostgreSQL, limiter on Redis
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["CREATOR_SYNC_STATE_URL"].startswith("postgresql://")
    assert env["CREATOR_SYNC_RATE_LIMIT_BACKEND"].startswith("redis://")
    assert env["AIRFLOW__CELERY__BROKER_URL"] != env["CREATOR_SYNC_RATE_LIMIT_BACKEND"]
    assert [r["dag_run_id"] for r in runs] == [run_id], runs
    # ran on Celery, on both workers, and the hooks spent the Redis budget
    assert all(ti["executor"] in (None, "CeleryExecutor") for ti in tries), {t["executor"] for t in tries}
    ran = {w: tasks_in(log) for w, log in logs.items()}
    assert all(ran.values()), f"a worker ran no creator_sync task: {ran}"
    assert b"creator_sync:ratelimit:insightiq_api" in limiter_keys, limiter_keys
    # the workers shared no directory: separate homes, and no run file on any local disk
    assert len({str(h) for h in homes} | {str(stack.home)}) == 3
    for home in (*homes, stack.home):
        assert not (home / "data").exists(), f"run files on a local disk: {home / 'data'}"
    names = {k.split("/runs/", 1)[1].split("/", 1)[1] for k in keys}
    assert {"fetch/users/users.parquet", "transform/users.jsonl", "report.md"} <= names, sorted(names)

    # the same outcomes as the embedded run
    assert insider["users_stored"] == CREATORS - insightiq["invalid_creators"], (insider, insightiq)
    assert insider["duplicate_events"] == 0, insider
    assert report["reconciled"], report["text"]
    assert report["fetched_creators"] == CREATORS, report
    assert report["fetched_creators"] == report["sent"] + report["rejected_total"] + report["unchanged"]
    overlap = max_pool_overlap(tries)
    for pool, peak in overlap.items():
        assert peak <= slots[pool], f"pool {pool}: {peak} task instances running at once, {slots[pool]} slots"
    assert overlap.get("insightiq_api", 0) >= 1 and overlap.get("insider_upsert", 0) >= 1, overlap
    # real 429s == 0 (injected ones apart) and what ARRIVED per window <= the limit, both vendors
    assert limit_violations(insightiq) + limit_violations(insider) == [], (insightiq, insider)
    assert "Reconciliation holds" in note, note

    with capsys.disabled():
        print(
            f"\ncelery x2 + postgres + redis + s3: run {run_seconds:.0f}s, total "
            f"{time.monotonic() - started:.0f}s; tasks per worker "
            f"{json.dumps({w: sorted(t) for w, t in ran.items()})}; {len(keys)} run files on S3; "
            f"users_stored {insider['users_stored']}, duplicate_events {insider['duplicate_events']}; "
            f"max pool overlap {overlap} (slots {slots})"
        )
