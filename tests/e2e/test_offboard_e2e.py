"""Creator offboarding end to end, under the real scheduler and API server (webhook receiver plugin included):

the InsightIQ sandbox disconnects a synced creator's accounts and delivers the signed ACCOUNTS.DISCONNECTED
webhooks -> the receiver queues them and triggers creator_offboard -> Insider holds the user without PII,
the state store, dead letters and run files hold no PII of theirs -> a creator_sync run sends nothing for
them (counted as offboarded) -> ACCOUNTS.CONNECTED re-enables them and the receiver's targeted sync sends
them again. A small sandbox (40 creators) keeps the wall time modest.
"""

from __future__ import annotations

import time

import httpx
import pytest

from creator_sync.store import OffboardingState, StateStore, creator_hash
from devtools.airflow_stack import AirflowStack, sandbox_connections
from devtools.sandbox.launcher import SandboxServers

# one stack for three steps that build on each other; the hang guard is generous because the stack alone
# can take minutes to start on a loaded 2-core machine (no timing is asserted)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

SYNC, OFFBOARD = "creator_sync", "creator_offboard"
POLL_S = 0.5  # the run lists are one cheap API call; a short poll ends each wait soon after the run does
PII = ("email", "phone_number", "name", "surname", "gender", "birthday", "age", "city", "country")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    sb = SandboxServers(creators=40, seed=5).start()
    home = tmp_path_factory.mktemp("airflow-offboard-e2e")
    extra = {
        **sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url),
        "CREATOR_SYNC_SCHEDULE": "0 0 * * *",
        "CREATOR_SYNC_RETRY_DELAY_S": "2",
        "CREATOR_SYNC_RATE_LIMIT_BACKEND": f"file://{home / 'rate-limits'}",
        "CREATOR_SYNC_STATE_URL": f"sqlite:///{home / 'state.db'}",
    }
    stack = AirflowStack(home, extra_env=extra)
    stack.env["CREATOR_SYNC_PUBLIC_BASE_URL"] = stack.url  # InsightIQ webhooks reach the API server plugin
    stack.env["CREATOR_SYNC_WEBHOOK_DEBOUNCE_S"] = "1"
    try:
        stack.start(timeout=600)  # a loaded machine starts the stack slowly; no timing is asserted
        stack.api.timeout = 120.0  # and answers slowly (set before the API client is first built)
        yield sb, stack, home
    finally:
        stack.stop()
        sb.stop()


def stored(sb: SandboxServers) -> dict[str, dict]:
    users = httpx.get(f"{sb.insider_url}/_sandbox/users", params={"limit": 1000}).json()["data"]
    return {u["identifiers"]["uuid"]: u for u in users if "uuid" in u["identifiers"]}


def wait_runs(api, dag_id: str, predicate, count: int = 1, timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = [r for r in api.runs(dag_id) if predicate(r)]
        if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        time.sleep(POLL_S)
    raise AssertionError(f"{dag_id} runs did not finish: {[(r['dag_run_id'], r['state']) for r in runs]}")


def idle(api, dag_id: str, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while any(r["state"] in ("queued", "running") for r in api.runs(dag_id)):
        assert time.monotonic() < deadline, api.runs(dag_id)
        time.sleep(POLL_S)


@pytest.fixture(scope="module")
def offboarded(env) -> dict:
    """What the first step found out and the later ones build on."""
    return {}


def test_disconnect_offboards_the_creator(env, offboarded):
    sb, stack, home = env
    api = stack.api
    store = StateStore(stack.env["CREATOR_SYNC_STATE_URL"])
    for dag_id in (SYNC, OFFBOARD, "insightiq_webhooks_setup"):
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    (first,) = wait_runs(api, SYNC, lambda r: r["run_type"] == "scheduled")
    assert first["state"] == "success", api.task_states(SYNC, first["dag_run_id"])
    wait_runs(api, "insightiq_webhooks_setup", lambda r: r["state"] in ("success", "failed"))
    idle(api, OFFBOARD)  # the daily sweep run of an empty queue

    before = stored(sb)
    creator = next(uuid for uuid, u in sorted(before.items()) if u["identifiers"].get("email"))
    email = before[creator]["identifiers"]["email"]
    assert store.attribute_hashes([creator])
    # a dead letter of theirs, as Insider's unification-error callback would leave it
    store.add_dead_letters(
        "insider-callback:e2e",
        [{"user_key": creator, "reason": "unification_error", "detail": "", "payload": before[creator]}],
    )
    run_files = list((home / "data" / "runs").rglob("*"))
    assert any(p.is_file() and email in p.read_bytes().decode("utf-8", "replace") for p in run_files)

    out = httpx.post(f"{sb.insightiq_url}/_sandbox/creators/{creator}/disconnect").json()
    assert out["webhooks"] == len(out["account_ids"]) > 0
    wait_runs(api, OFFBOARD, lambda r: r["dag_run_id"].startswith("insightiq_offboard__"))
    idle(api, OFFBOARD)
    runs = [r for r in api.runs(OFFBOARD) if r["dag_run_id"].startswith("insightiq_offboard__")]
    assert all(r["state"] == "success" for r in runs), [
        api.task_states(OFFBOARD, r["dag_run_id"]) for r in runs
    ]

    # Insider: the uuid stays, every PII attribute and PII identifier is gone; events stay
    user = stored(sb)[creator]
    assert set(user["identifiers"]) <= {"uuid", "custom"}
    assert not set(user["attributes"]) & set(PII)
    assert len(user["events"]) == len(before[creator]["events"])
    # locally: no attribute hash, no dead letter, no run-file row with their PII; a hashed log entry
    assert store.attribute_hashes([creator]) == {}
    assert email not in repr(store.dead_letters(pending_only=False))
    with store.engine.connect() as conn:
        for table in (
            "dead_letters",
            "in_flight_batches",
            "erasure_log",
            "offboarded_creators",
            "run_reports",
        ):
            assert email not in repr(conn.exec_driver_sql(f"select * from {table}").fetchall()), table
    leftovers = [p for p in (home / "data").rglob("*") if p.is_file() and p.suffix in (".parquet", ".jsonl")]
    assert not [p for p in leftovers if email in p.read_bytes().decode("utf-8", "replace")]
    state = OffboardingState(store)
    log = [e for e in state.erasure_log() if e["user_hash"] == creator_hash(creator)]
    assert log and log[-1]["outcome"] == "erased" and log[-1]["reason"] == "all_accounts_disconnected"
    # one ACCOUNTS.DISCONNECTED per account: one or more runs; together they erased the creator once
    reports = [r for r in store.run_reports(OFFBOARD) if r["run_id"].startswith("insightiq_offboard__")]
    assert reports and all(r["ok"] for r in reports)
    assert sum(r["figures"]["erased"] for r in reports) >= 1
    offboarded.update(creator=creator, email=email, user=user, account_ids=out["account_ids"])


def test_the_next_sync_sends_nothing_for_them(env, offboarded):
    sb, stack, _ = env
    api, creator, user = stack.api, offboarded["creator"], offboarded["user"]
    out = {"account_ids": offboarded["account_ids"]}
    run_id = api.trigger(SYNC, conf={"account_ids": out["account_ids"]})
    (run,) = wait_runs(api, SYNC, lambda r: r["dag_run_id"] == run_id)
    assert run["state"] == "success", api.task_states(SYNC, run_id)
    sync_report = api.xcom(SYNC, run_id, "report")
    assert (sync_report["offboarded"], sync_report["sent"], sync_report["reconciled"]) == (1, 0, True)
    assert stored(sb)[creator] == user


def test_reconnect_brings_them_back_on_the_following_sync(env, offboarded):
    sb, stack, _ = env
    api, creator, email = stack.api, offboarded["creator"], offboarded["email"]
    state = OffboardingState(StateStore(stack.env["CREATOR_SYNC_STATE_URL"]))
    httpx.post(f"{sb.insightiq_url}/_sandbox/creators/{creator}/connect").raise_for_status()
    wait_runs(api, SYNC, lambda r: r["dag_run_id"].startswith("insightiq_webhook__"))
    idle(api, SYNC)  # one ACCOUNTS.CONNECTED per account: the debounce may still split them over two runs
    back = [r for r in api.runs(SYNC) if r["dag_run_id"].startswith("insightiq_webhook__")]
    assert all(r["state"] == "success" for r in back), [api.task_states(SYNC, r["dag_run_id"]) for r in back]
    reports = [api.xcom(SYNC, r["dag_run_id"], "report") for r in back]
    assert sum(r["sent"] for r in reports) == 1 and not any(r["offboarded"] for r in reports)
    assert stored(sb)[creator]["identifiers"].get("email") == email
    assert not state.is_offboarded(creator)
    assert state.erasure_log()[0]["outcome"] == "reenabled"
