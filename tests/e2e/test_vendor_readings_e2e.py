"""The sync under each alternative reading of the vendor docs (devtools/sandbox/readings.py,
docs/vendor-contract.md): the DAG's task bodies (fetch, transform, the upsert operator) against the
sandboxes with the reading on reconcile with a run under the default reading - every valid creator and
event stored once at Insider, 0 duplicates, 0 real 429s. The default reading's run is the same for every
reading (seeded sandbox, reset before each run, same interval): the module runs it once per interval hour
and compares each reading with it."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.sync import fetch
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.steps import transform_step
from devtools.sandbox.inspection import limit_violations

pytestmark = pytest.mark.slow

RATE = 200
SHARDS = 2
_TRIES = itertools.count(1)
FAST_IQ_FAULTS = {"fault_429": 0.05}  # injected throttles on InsightIQ (1 s windows: short backoffs)
READINGS = {
    "bare_429": ({"bare_429": True, **FAST_IQ_FAULTS}, {"bare_429": True}),
    "throttle_403": ({"throttle_403": True, "bare_429": True, **FAST_IQ_FAULTS}, {"throttle_403": True}),
    "contents_require_account_id": ({"contents_require_account_id": True}, {}),
}
OFF = {
    "fault_429": 0.0,
    "bare_429": False,
    "throttle_403": False,
    "contents_require_account_id": False,
}


@pytest.fixture(scope="module")
def sandboxes():
    from devtools.sandbox.launcher import SandboxServers

    with SandboxServers(creators=200, seed=7, extra_args=["--insightiq-rate", str(RATE)]) as sb:
        yield sb


@pytest.fixture(scope="module")
def baselines() -> dict[datetime, dict]:
    """The default reading's run per interval end (the hour a run ends at)."""
    return {}


@pytest.fixture
def env(sandboxes, conn_env, monkeypatch, tmp_path):
    from devtools.bench.e2e import raised_config_dir
    from devtools.connections import sandbox_hosts

    monkeypatch.setenv("CREATOR_SYNC_CONFIG_DIR", str(raised_config_dir(tmp_path / "config", RATE)))
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", f"file://{tmp_path / 'rate-limits'}")
    monkeypatch.delenv("CREATOR_SYNC_FETCH_MODE", raising=False)
    conn_env(sandbox_hosts(sandboxes))
    yield sandboxes
    for svc in ("insightiq", "insider"):
        sandboxes.configure(svc, OFF)


def run_end() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def sync_once(sandboxes, monkeypatch, tmp_path, name: str, end: datetime) -> dict:
    """One manual run (fresh data directory and sync state) from an empty Insider, of the 3 days to `end`."""
    from creator_sync.operators import InsiderUpsertOperator

    monkeypatch.setenv("CREATOR_SYNC_DATA_URL", f"file://{tmp_path / name / 'data'}")
    monkeypatch.setenv("CREATOR_SYNC_STATE_URL", f"sqlite:///{tmp_path / name / 'state.db'}")
    sandboxes.reset("insightiq", "insider")
    run = SyncRun(f"manual__{name}", end - timedelta(days=3), end, False, False, (), 0, "manual")
    fetch.fetch_directory(InsightIQHook(), run)
    fetch.fetch_contents(InsightIQHook(), run)
    for shard in range(SHARDS):
        fetch.fetch_account_shard(InsightIQHook(), run, shard, SHARDS)
    transformed = transform_step(run)
    op = InsiderUpsertOperator(
        task_id="upsert",
        users_path=transformed["users_path"],
        rejected_path=transformed["rejected_path"],
        malformed_path=transformed["malformed_path"],
        skip_hook=True,
        dry_run=False,
        run_id=run.run_id,
    )
    op.execute(context={"ti": SimpleNamespace(task_id="upsert", map_index=-1, try_number=next(_TRIES))})
    users = httpx.get(f"{sandboxes.insider_url}/_sandbox/users", params={"limit": 100_000}).json()["data"]
    return {
        "users": {u["identifiers"]["uuid"]: len(u["events"]) for u in users},
        "insider": sandboxes.stats("insider"),
        "insightiq": sandboxes.stats("insightiq"),
    }


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_a_sync_under_each_reading_reconciles_with_the_default_one(
    env, baselines, monkeypatch, tmp_path, reading
):
    end = run_end()
    if end not in baselines:
        baselines[end] = sync_once(env, monkeypatch, tmp_path, "default", end)
    baseline = baselines[end]
    assert baseline["users"] and sum(baseline["users"].values()) > 0

    insightiq, insider = READINGS[reading]
    env.configure("insightiq", insightiq)
    env.configure("insider", insider)
    got = sync_once(env, monkeypatch, tmp_path, reading, end)

    assert got["users"] == baseline["users"]  # every valid creator, with every event, once
    assert got["insider"]["duplicate_events"] == 0
    for svc in ("insightiq", "insider"):
        assert limit_violations(got[svc]) == [], (svc, got[svc])  # 0 real 429s, no window over its limit
    if "fault_429" in insightiq:
        status = "403" if insightiq.get("throttle_403") else "429"
        assert got["insightiq"]["requests_by_status"].get(status, 0) >= 1  # the reading was exercised
    if reading == "contents_require_account_id":
        assert got["insightiq"]["requests_by_status"].get("400", 0) == 1  # the one answer that switched
    print(json.dumps({"reading": reading, "users": len(got["users"]), "events": sum(got["users"].values())}))
