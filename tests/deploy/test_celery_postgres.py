"""The docker-compose deployment path, proven without Docker: CeleryExecutor with the metadata DB and Celery
results on PostgreSQL, the broker and the shared rate-limit budget on Redis (devtools/celery_stack.py runs
scripts/compose-init.sh, then scheduler, dag-processor, api-server and `airflow celery worker` as
subprocesses with the compose file's environment), one `creator_sync` run against the sandboxes, and the
same outcomes as the embedded run. Skips, naming what is missing, without PostgreSQL or Redis."""

from __future__ import annotations

import json
import time

import pytest

from devtools.airflow_stack import sandbox_connections
from devtools.celery_stack import (
    CeleryStack,
    max_pool_overlap,
    missing_services,
    pool_slots,
    task_instance_tries,
)
from devtools.sandbox.inspection import limit_violations
from devtools.sandbox.launcher import SandboxServers
from devtools.services import require

pytestmark = pytest.mark.slow

CREATORS = 1000
DAG_ID = "creator_sync"


@pytest.fixture(scope="module")
def postgres_and_redis():
    require(missing_services(), "the CeleryExecutor stack (PostgreSQL and Redis)")


def test_creator_sync_runs_on_celery_with_postgres_and_redis(postgres_and_redis, tmp_path, capsys):
    started = time.monotonic()
    with SandboxServers(creators=CREATORS) as sb:
        stack = CeleryStack(
            tmp_path / "airflow", sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url)
        )
        # The report task writes its run note through the REST API: worker -> api-server, like production.
        stack.extra_env["AIRFLOW_CONN_CREATOR_SYNC_AIRFLOW_API"] = json.dumps(
            {"conn_type": "http", "host": stack.url, "login": "admin", "password": stack.admin_password}
        )
        with stack:
            env = stack.env
            assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
            assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
            assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
            assert env["CREATOR_SYNC_STATE_URL"].startswith("postgresql://")
            assert env["CREATOR_SYNC_RATE_LIMIT_BACKEND"].startswith("redis://")
            assert env["AIRFLOW__CELERY__BROKER_URL"] != env["CREATOR_SYNC_RATE_LIMIT_BACKEND"]

            api = stack.api
            api.wait_for_dag(DAG_ID, timeout=120)
            # Trigger while paused, at the logical date the scheduler would schedule next: unpausing then
            # finds that run and creates no `scheduled__` one (catchup=False would otherwise add the latest
            # interval's run, and max_active_runs=1 would queue ours behind it). A logical date also gives
            # the manual run a data interval, which creator_sync needs (SyncRun.from_context).
            logical_date = api._call("GET", f"/dags/{DAG_ID}")["next_dagrun_logical_date"]
            assert logical_date, "the dag-processor set no next run for creator_sync"
            run_id = api.trigger(DAG_ID, logical_date=logical_date)
            api.unpause(DAG_ID)
            run_started = time.monotonic()
            deadline = run_started + 240
            while (state := api.run_state(DAG_ID, run_id)) not in ("success", "failed"):
                stack.check_alive()
                assert time.monotonic() < deadline, f"run still {state}: {api.task_states(DAG_ID, run_id)}"
                time.sleep(3)
            run_seconds = time.monotonic() - run_started
            assert state == "success", (
                f"{api.task_states(DAG_ID, run_id)}\nworker log tail:\n{stack.log_tail('celery worker')}"
            )

            report = api.xcom(DAG_ID, run_id, "report")
            runs = api._call("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
            assert [r["dag_run_id"] for r in runs] == [run_id], runs
            tries = task_instance_tries(api, DAG_ID, run_id)
            overlap = max_pool_overlap(tries)
            slots = pool_slots(api)
            note = api._call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["note"] or ""
            worker_log = stack.log_tail("celery worker", chars=200_000)
            import redis

            limiter_keys = redis.Redis.from_url(env["CREATOR_SYNC_RATE_LIMIT_BACKEND"]).keys(
                "creator_sync:ratelimit:*"
            )
            timings = dict(stack.timings)

        insightiq, insider = sb.stats("insightiq"), sb.stats("insider")

    # ran on Celery: tasks were executed by the worker process, and the hooks spent the Redis budget
    assert all(ti["executor"] in (None, "CeleryExecutor") for ti in tries), {t["executor"] for t in tries}
    assert "fetch_creators" in worker_log, worker_log[-3000:]
    assert b"creator_sync:ratelimit:insightiq_api" in limiter_keys, limiter_keys

    # the same outcomes as the embedded run
    assert insider["users_stored"] == CREATORS - insightiq["invalid_creators"], (insider, insightiq)
    assert insider["duplicate_events"] == 0, insider
    assert report["reconciled"], report["text"]
    accounted = report["sent"] + report["rejected_total"] + report["unchanged"]
    assert report["fetched_creators"] == accounted, report
    assert report["fetched_creators"] == CREATORS, report
    for pool, peak in overlap.items():
        assert peak <= slots[pool], f"pool {pool}: {peak} task instances running at once, {slots[pool]} slots"
    assert overlap.get("insightiq_api", 0) >= 1 and overlap.get("insider_upsert", 0) >= 1, overlap
    # real 429s == 0 (injected ones apart) and what ARRIVED per window <= the limit, both vendors
    assert limit_violations(insightiq) + limit_violations(insider) == [], (insightiq, insider)
    assert "Reconciliation holds" in note, note

    with capsys.disabled():
        print(
            f"\ncelery/postgres/redis: stack init {timings['init']:.0f}s, healthy {timings['start']:.0f}s, "
            f"run {run_seconds:.0f}s, total {time.monotonic() - started:.0f}s; "
            f"users_stored {insider['users_stored']} "
            f"(= {CREATORS} - {insightiq['invalid_creators']} invalid), "
            f"duplicate_events {insider['duplicate_events']}; report fetched {report['fetched_creators']} "
            f"= sent {report['sent']} + rejected {report['rejected_total']} "
            f"+ unchanged {report['unchanged']}; "
            f"max pool overlap {overlap} (slots {slots}); InsightIQ max/window "
            f"{insightiq['max_requests_in_window']}, windows over limit {insightiq['windows_over_limit']}, "
            f"429s {insightiq['rate_limited_429s']}, arrived max/window "
            f"{insightiq['attempted_max_in_window']}, InsightIQ requests {report['insightiq_requests']}"
        )
