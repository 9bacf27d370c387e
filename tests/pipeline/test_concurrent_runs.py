"""Two runs in two processes send overlapping users to one Insider sandbox at the same time, sharing one
state store (SQLite, then PostgreSQL): their claims keep every event stored exactly once (slow)."""

from __future__ import annotations

import json
import multiprocessing
import os
import uuid

import pytest

from creator_sync.store import StateStore

pytestmark = pytest.mark.slow

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def users(first: int, last: int) -> list[dict]:
    return [
        {
            "identifiers": {"uuid": f"cc-{i}", "email": f"cc{i}@example.com"},
            "attributes": {"name": f"C{i}"},
            "events": [
                {
                    "event_name": "content_published",
                    "timestamp": f"2026-01-01T10:{j:02d}:00Z",
                    "event_params": {"name": f"t{i}-{j}", "custom": {"content_id": f"c{i}-{j}"}},
                }
                for j in range(3)
            ],
        }
        for i in range(first, last)
    ]


def _send(users_path: str, state_url: str, run_id: str, env: dict, barrier, results) -> None:
    """One run's sender in its own process (started with spawn: a fresh interpreter, like a worker)."""
    os.environ.update(env)
    from creator_sync.hooks.insider import InsiderHook
    from creator_sync.pipeline.send import send_file

    hook = InsiderHook()
    barrier.wait(timeout=120)
    report = send_file(users_path, state=StateStore(state_url), hook=hook, run_id=run_id, max_users=25)
    results.put((run_id, report.as_dict()))


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    import sqlalchemy as sa

    name = f"creator_sync_claims_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {exc}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_two_processes_sending_overlapping_users_store_each_event_once(sandbox, tmp_path, state_url):
    from devtools.connections import connection_envs, sandbox_hosts

    sandbox.reset()
    StateStore(state_url)  # tables exist before the two senders race
    files = {}
    for run_id, (first, last) in {"run-A": (0, 300), "run-B": (150, 450)}.items():
        files[run_id] = tmp_path / f"{run_id}.jsonl"
        files[run_id].write_text("".join(json.dumps(u) + "\n" for u in users(first, last)))
    env = {
        **connection_envs(sandbox_hosts(sandbox)),
        "CREATOR_SYNC_RATE_LIMIT_BACKEND": f"file://{tmp_path / 'limits'}",  # one shared 10/s budget
        "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"],
    }
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_send, args=(str(path), state_url, run_id, env, barrier, results))
        for run_id, path in files.items()
    ]
    for p in procs:
        p.start()
    reports = dict(results.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    insider = sandbox.stats("insider")
    assert insider["duplicate_events"] == 0
    assert insider["events_stored"] == 450 * 3 and insider["users_stored"] == 450
    a, b = reports["run-A"], reports["run-B"]
    # every user of each run is sent by it or left unchanged (the other sent it first, the run waiting while
    # the other held it); none is skipped
    assert a["users_sent"] + a["unchanged"] == 300 and a["claimed_elsewhere"] == 0
    assert b["users_sent"] + b["unchanged"] == 300 and b["claimed_elsewhere"] == 0
    assert a["users_sent"] + b["users_sent"] == 450
    assert StateStore(state_url).live_claim_runs() == set()  # both released their claims
