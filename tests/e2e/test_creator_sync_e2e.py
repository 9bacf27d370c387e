"""creator_sync under the real scheduler (airflow standalone, pools in force) against the sandboxes.

One module-scoped stack; the tests run in file order and build on each other: the scheduled run, a clear
and re-run of it, then a two-day backfill. Daily intervals (CREATOR_SYNC_SCHEDULE) so each run carries
tens of events; upserts in batches of 50 users (CREATOR_SYNC_UPSERT_MAX_USERS), four per run. 200
creators: a full fetch (the scheduled run, its re-run and the backfill each read everything) makes about
one InsightIQ request per creator at 10 req/s, so the creator count sets most of this module's wall time;
200 still fill the rate windows for about twenty seconds per fetch and send several upsert batches per run. A
run whose upsert task is killed mid-way and retried is tested under faults in tests/e2e/test_chaos_e2e.py.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from creator_sync.assets import INSIDER_USERS
from creator_sync.settings import pools_file
from creator_sync.sync.run_context import run_dir_name
from devtools.airflow_stack import AirflowStack, sandbox_connections
from devtools.sandbox.inspection import limit_violations
from devtools.sandbox.launcher import SandboxServers
from devtools.secrets_scan import scan_stack
from devtools.webhook_setup import enable_receiver

pytestmark = pytest.mark.slow

DAG = "creator_sync"
REPO = Path(__file__).resolve().parents[2]
CREATORS = 200
POOLS = json.loads(pools_file().read_text())


class Env:
    def __init__(self, sb: SandboxServers, stack: AirflowStack, home: Path):
        self.sb, self.stack, self.home = sb, stack, home
        self.api = stack.api

    def stored_users(self) -> list[dict]:
        return self.sb.insider_users()

    def events(self) -> list[dict]:
        """Stored events, each with `epoch` parsed from its RFC 3339 timestamp."""
        return [
            {**e, "epoch": datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()}
            for u in self.stored_users()
            for e in u.get("events", [])
        ]

    def report(self, run_id: str) -> dict:
        return self.api.xcom(DAG, run_id, "report")

    def transform_stats(self, run_id: str) -> dict:
        run_dir = self.home / "data" / "runs" / run_dir_name(run_id)
        return json.loads((run_dir / "transform" / "transform_stats.json").read_text())

    def wait_for_runs(self, predicate, count: int, timeout: float = 600) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.api.runs(DAG) if predicate(r)]
            if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs):
                return runs
            time.sleep(3)
        raise AssertionError(f"runs did not finish: {[(r['dag_run_id'], r['state']) for r in runs]}")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    sb = SandboxServers(creators=CREATORS, seed=11).start()
    home = tmp_path_factory.mktemp("airflow-e2e")
    extra = {
        **sandbox_connections(sb.insightiq_url, sb.insider_url, sb.web_push_url),
        "CREATOR_SYNC_SCHEDULE": "0 0 * * *",
        "CREATOR_SYNC_RETRY_DELAY_S": "2",
        "CREATOR_SYNC_UPSERT_MAX_USERS": "50",
        "CREATOR_SYNC_RATE_LIMIT_BACKEND": f"file://{home / 'rate-limits'}",
        # the margin must cover send-to-arrival jitter (docs/production.md); on this 2-core host the stack,
        # the sandbox and a second test worker share the CPU and a late task wake-up reaches tens of ms
        "CREATOR_SYNC_RATE_LIMIT_MARGIN": "0.1",
        "CREATOR_SYNC_STATE_URL": f"sqlite:///{home / 'state.db'}",
    }
    stack = AirflowStack(home, extra_env=extra)
    enable_receiver(stack, debounce_s=1)  # InsightIQ webhooks reach the API server plugin
    try:
        stack.start(timeout=600)  # a loaded 2-core machine can take minutes to start standalone
        stack.api.timeout = 120.0  # and the API server answers slowly (set before the client is first built)
        yield Env(sb, stack, home)
    finally:
        stack.stop()
        sb.stop()


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def assert_pools_respected(env: Env) -> None:
    by_pool: dict[str, list] = defaultdict(list)
    for run in env.api.runs(DAG):
        for ti in env.api.task_instances(DAG, run["dag_run_id"]):
            if ti["start_date"] and ti["end_date"]:
                span = (datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"]))
                by_pool[ti["pool"]].append(span)
    for pool, spans in by_pool.items():
        if pool in POOLS:
            assert max_overlap(spans) <= POOLS[pool]["slots"], f"pool {pool} ran more tasks than slots"


def assert_limits_respected(env: Env) -> None:
    """Real 429s == 0 (injected 429 faults are counted apart) and what ARRIVED per window <= the limit:
    both fail when a client sends into a full window (see tests/hooks/test_limit_control.py)."""
    for service in ("insightiq", "insider"):
        stats = env.sb.stats(service)
        assert limit_violations(stats) == [], stats


FULL_PATH = ("fetch_creators", "fetch_contents", "fetch_account_shard", "transform", "upsert")


def assert_path(env: Env, run_id: str, *, fast: bool) -> None:
    """The path the run took: a targeted run syncs in sync_accounts and skips the full path's tasks; any
    other run passes through sync_accounts to them. The report runs after either and emits the profile
    audit's Asset event (through its alias outlet), one per run, with the run's figures."""
    states = env.api.task_states(DAG, run_id)
    full = {name: state for name, state in states.items() if name.split("[")[0] in FULL_PATH}
    assert full and set(full.values()) == ({"skipped"} if fast else {"success"}), states
    assert [states[t] for t in ("sync_accounts", "report")] == ["success"] * 2, states
    [event] = env.api.asset_events(DAG, run_id)
    assert (event["name"], event["uri"]) == (INSIDER_USERS.name, INSIDER_USERS.uri), event
    assert event["extra"]["run_id"] == run_id and event["extra"]["sent"] == env.report(run_id)["sent"], event


def test_scheduled_run_sends_exactly_the_valid_creators(env):
    env.api.wait_for_dag(DAG)
    env.api.unpause(DAG)  # catchup=False: the scheduler creates the latest complete interval's run
    (run,) = env.wait_for_runs(lambda r: r["run_type"] == "scheduled", 1)
    assert run["state"] == "success", env.api.task_states(DAG, run["dag_run_id"])
    assert_path(env, run["dag_run_id"], fast=False)

    truth = env.sb.stats("insightiq")
    insider = env.sb.stats("insider")
    assert insider["users_stored"] == truth["creators"] - truth["invalid_creators"]
    assert insider["duplicate_events"] == 0

    from creator_sync.store import StateStore

    letters = StateStore(env.stack.env["CREATOR_SYNC_STATE_URL"]).dead_letters(pending_only=False)
    invalid = httpx.get(f"{env.sb.insightiq_url}/_sandbox/creators/invalid").json()["data"]
    assert {(d.user_key, d.reason) for d in letters} == {(c["user_id"], c["reason"]) for c in invalid}

    report = env.report(run["dag_run_id"])
    assert report["reconciled"] and report["fetched_creators"] == truth["creators"]
    assert report["sent"] == insider["users_stored"]

    start = datetime.fromisoformat(run["data_interval_start"]).timestamp()
    end = datetime.fromisoformat(run["data_interval_end"]).timestamp()
    events = env.events()
    assert events and all(not e["skip_hook"] and start <= e["epoch"] < end for e in events)
    assert len(events) == env.transform_stats(run["dag_run_id"])["events_written"]
    assert_pools_respected(env)
    assert_limits_respected(env)


def test_clearing_and_rerunning_sends_nothing_twice(env):
    (run,) = [r for r in env.api.runs(DAG) if r["run_type"] == "scheduled"]
    before = env.sb.stats("insider")
    env.api.clear_run(DAG, run["dag_run_id"])
    assert env.api.wait_for_run(DAG, run["dag_run_id"]) == "success"
    after = env.sb.stats("insider")
    assert after["duplicate_events"] == 0
    assert after["events_stored"] == before["events_stored"]
    assert after["users_stored"] == before["users_stored"]
    assert after["upsert_requests"] == before["upsert_requests"]  # the re-run sent nothing
    # the report describes the run over all its attempts: what its first execution sent is still its
    report = env.report(run["dag_run_id"])
    assert report["sent"] == before["users_stored"] and report["unchanged"] == 0 and report["reconciled"]


def test_backfill_sends_only_skip_hook_events_for_those_days(env):
    env.api.wait_for_dag(DAG)
    env.api.unpause(DAG)  # a no-op after the first test; lets this test run on its own too
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first, last = today - timedelta(days=4), today - timedelta(days=3)
    created = env.stack.airflow_write(
        "backfill", "create", "--dag-id", DAG, "--from-date", first.isoformat(), "--to-date", last.isoformat()
    )
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-3000:]
    runs = env.wait_for_runs(lambda r: r["run_type"] == "backfill", 2, timeout=900)
    assert [r["state"] for r in runs] == ["success"] * 2
    intervals = [
        (datetime.fromisoformat(r["data_interval_start"]), datetime.fromisoformat(r["data_interval_end"]))
        for r in runs
    ]
    low, high = min(s for s, _ in intervals).timestamp(), max(e for _, e in intervals).timestamp()
    assert (low, high) == (first.timestamp(), (last + timedelta(days=1)).timestamp())

    events = env.events()
    historic = [e for e in events if e["skip_hook"]]
    assert historic and all(low <= e["epoch"] < high for e in historic)
    assert all(not e["skip_hook"] for e in events if not low <= e["epoch"] < high)
    assert len(historic) == sum(env.transform_stats(r["dag_run_id"])["events_written"] for r in runs)
    assert env.sb.stats("insider")["duplicate_events"] == 0
    assert_pools_respected(env)
    assert_limits_respected(env)


def test_signed_webhook_delivery_leads_to_a_targeted_sync_of_that_creator(env):
    env.api.wait_for_dag(DAG)
    env.api.unpause(DAG)
    env.wait_for_runs(lambda r: True, 1)  # the creators must be in Insider before one of them changes
    env.api.unpause("insightiq_webhooks_setup")  # registers our receiver URL at the InsightIQ sandbox
    deadline = time.monotonic() + 300
    while not [r for r in env.api.runs("insightiq_webhooks_setup") if r["state"] == "success"]:
        assert time.monotonic() < deadline, env.api.runs("insightiq_webhooks_setup")
        time.sleep(3)
    before = {u["identifiers"]["uuid"]: u for u in env.stored_users() if "uuid" in u.get("identifiers", {})}
    creator = sorted(before)[0]

    mutated = httpx.post(f"{env.sb.insightiq_url}/_sandbox/mutate", json={"user_ids": [creator]})
    mutated.raise_for_status()  # the sandbox now delivers a signed PROFILES.UPDATED to our receiver
    (run,) = env.wait_for_runs(lambda r: r["dag_run_id"].startswith("insightiq_webhook__"), 1, timeout=600)
    assert run["state"] == "success", env.api.task_states(DAG, run["dag_run_id"])
    assert_path(env, run["dag_run_id"], fast=True)

    report = env.report(run["dag_run_id"])
    assert (report["fetched_creators"], report["sent"]) == (1, 1) and report["reconciled"]
    after = {u["identifiers"]["uuid"]: u for u in env.stored_users() if "uuid" in u.get("identifiers", {})}
    assert after[creator]["attributes"] != before[creator]["attributes"]
    others = [uuid for uuid in before if uuid != creator]
    assert all(after[uuid]["attributes"] == before[uuid]["attributes"] for uuid in others)
    assert env.sb.stats("insider")["duplicate_events"] == 0


def test_no_secret_anywhere_after_the_runs(env):
    """Last in this module: after every run above, the secrets scan (devtools.secrets_scan) finds no
    secret in any place: task logs, XCom, rendered fields, notes, reports, server logs, the state DB, run
    files."""
    runs = {DAG: [r["dag_run_id"] for r in env.api.runs(DAG)]}
    findings, kinds = scan_stack(env.api, env.home, env.stack.env, runs, [env.home / "state.db"])
    assert {"log", "xcom", "server log", "state DB", "run file"} <= kinds, kinds
    assert findings == [], [str(f) for f in findings]
