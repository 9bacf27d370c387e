"""`GET /v1/social/contents` under either reading of the sources (creator_sync.sync.contents_read): one list
over all accounts, or per account when InsightIQ requires `account_id` - switched by the 400 that asks for
it, remembered per connection, forced by the connection extra `contents_read`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.http.errors import VendorBadRequestError
from creator_sync.pipeline.sources import discover_inputs
from creator_sync.sync import contents_read, fetch, insightiq_reads
from creator_sync.sync.run_context import SyncRun

RATE = 200
SHARDS = 4
# a few accounts per shard: the per-account reads (one request per account, each ~40 ms at the sandbox)
# set the time, and every check holds for any fleet with contents in the interval
CREATORS = 50


def make_run(run_id: str) -> SyncRun:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return SyncRun(run_id, end - timedelta(days=2), end, False, False, (), run_type="manual")


def bad_request(message: str, status: int = 400) -> VendorBadRequestError:
    return VendorBadRequestError(
        "x",
        vendor="InsightIQ",
        method="GET",
        path="/v1/social/contents",
        status=status,
        vendor_message=message,
    )


def test_the_setting_is_checked_and_the_400_asking_for_account_id_is_recognised():
    assert contents_read.setting({}, "c") == contents_read.AUTO
    assert contents_read.setting({"contents_read": " Per_Account "}, "c") == contents_read.PER_ACCOUNT
    with pytest.raises(CreatorSyncConfigError, match="'contents_read' must be one of auto, all_accounts"):
        contents_read.setting({"contents_read": "sometimes"}, "insightiq_default")
    assert contents_read.asks_for_account_id(bad_request("query parameter 'account_id' is required"))
    assert not contents_read.asks_for_account_id(bad_request("from_date must be YYYY-MM-DD"))
    assert not contents_read.asks_for_account_id(bad_request("account_id unknown", status=404))


def test_the_switch_is_remembered_per_connection_and_a_run_keeps_its_first_mode(local_sync_store, tmp_path):
    run_dir = tmp_path / "run"
    assert contents_read.run_mode(run_dir, "iq_a", {}) == contents_read.ALL_ACCOUNTS
    contents_read.remember("iq_a", "HTTP 400")
    assert contents_read.connection_mode("iq_a", {}) == contents_read.PER_ACCOUNT
    assert contents_read.connection_mode("iq_b", {}) == contents_read.ALL_ACCOUNTS  # per connection
    assert contents_read.run_mode(run_dir, "iq_a", {}) == contents_read.ALL_ACCOUNTS  # the run's own mode
    assert contents_read.run_mode(tmp_path / "next", "iq_a", {}) == contents_read.PER_ACCOUNT
    forced = {"contents_read": "all_accounts"}
    assert contents_read.connection_mode("iq_a", forced) == contents_read.ALL_ACCOUNTS
    contents_read.forget("iq_a")
    assert contents_read.connection_mode("iq_a", {}) == contents_read.ALL_ACCOUNTS


@pytest.fixture(scope="module")
def iq_sandbox():
    from devtools.sandbox.launcher import SandboxServers

    with SandboxServers(creators=CREATORS, seed=7, extra_args=["--insightiq-rate", str(RATE)]) as sb:
        yield sb


@pytest.fixture
def strict_contents(iq_sandbox, conn_env, local_sync_store, monkeypatch, tmp_path):
    """The sandbox requiring account_id on the contents list; the client at the sandbox's raised rate."""
    from devtools.bench.e2e import raised_config_dir
    from devtools.connections import sandbox_hosts

    monkeypatch.setenv("CREATOR_SYNC_CONFIG_DIR", str(raised_config_dir(tmp_path / "config", RATE)))
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", f"file://{tmp_path / 'rate-limits'}")
    conn_env(sandbox_hosts(iq_sandbox))
    iq_sandbox.reset("insightiq")
    run = make_run("manual__contents-expected")
    from_date, to_date = insightiq_reads.day_range(run)
    expected = sorted(
        c["id"] for c in InsightIQHook().iter_records("contents", from_date=from_date, to_date=to_date)
    )
    assert expected
    iq_sandbox.configure("insightiq", {"contents_require_account_id": True})
    yield iq_sandbox, expected
    iq_sandbox.configure("insightiq", {"contents_require_account_id": False})


def fetched_contents(run: SyncRun) -> list[str]:
    paths = discover_inputs(run.dir / "fetch")["contents"]
    frames = [pd.read_parquet(p) for p in paths]
    return sorted(i for f in frames if len(f) for i in f["id"])


def full_fetch(run: SyncRun) -> dict:
    result = fetch.fetch_contents(InsightIQHook(), run)
    for shard in range(SHARDS):
        fetch.fetch_account_shard(InsightIQHook(), run, shard, SHARDS)
    return result


@pytest.mark.slow
def test_a_400_asking_for_account_id_switches_to_per_account_reads_and_every_item_comes_once(strict_contents):
    sandbox, expected = strict_contents
    first = make_run("manual__contents-switch")
    result = full_fetch(first)
    assert result["mode"] == contents_read.PER_ACCOUNT and result["read_by"] == "this task"
    assert fetched_contents(first) == expected  # each item once: the shards kept the run's first mode
    assert contents_read.remembered("insightiq_default")["mode"] == contents_read.PER_ACCOUNT

    second = make_run("manual__contents-shards")
    result = full_fetch(second)
    assert result["read_by"] == "account shards" and result["count"] == 0
    assert fetched_contents(second) == expected
    assert sandbox.stats("insightiq")["requests_by_status"].get("400", 0) == 1  # only the switching answer


@pytest.mark.slow
def test_the_guard_fails_with_the_all_accounts_read_forced(strict_contents, conn_env):
    """The guard switched off (contents_read forced to all_accounts): the run fails on the 400."""
    from devtools.connections import sandbox_hosts

    sandbox, _ = strict_contents
    conn_env(sandbox_hosts(sandbox), insightiq_default={"extra": {"contents_read": "all_accounts"}})
    with pytest.raises(VendorBadRequestError, match="account_id"):
        fetch.fetch_contents(InsightIQHook(), make_run("manual__contents-forced"))


@pytest.mark.slow
def test_per_account_forced_reads_in_the_shards_without_a_400(strict_contents, conn_env):
    from devtools.connections import sandbox_hosts

    sandbox, expected = strict_contents
    conn_env(sandbox_hosts(sandbox), insightiq_default={"extra": {"contents_read": "per_account"}})
    sandbox.reset("insightiq")
    run = make_run("manual__contents-forced-per-account")
    assert full_fetch(run)["read_by"] == "account shards"
    assert fetched_contents(run) == expected
    assert sandbox.stats("insightiq")["requests_by_status"].get("400", 0) == 0


@pytest.mark.slow
def test_an_incremental_run_reads_contents_through_the_per_account_sweep(
    strict_contents, conn_env, monkeypatch
):
    """Contents forced per account: the first scheduled run reads them in the shards, the next (incremental)
    run sweeps its due accounts over the week before, so an item dated before its interval still arrives."""
    import httpx

    from creator_sync.pipeline.transform import load_stats
    from creator_sync.sync import incremental_fetch
    from creator_sync.sync.snapshot import SnapshotStore
    from creator_sync.sync.steps import transform_step
    from devtools.connections import sandbox_hosts

    sandbox, _ = strict_contents
    conn_env(sandbox_hosts(sandbox), insightiq_default={"extra": {"contents_read": "per_account"}})
    cursor = {"hour": 0}
    monkeypatch.setattr(incremental_fetch, "sweep_hour", lambda run: cursor["hour"])
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    def scheduled(start: datetime) -> SyncRun:
        run_id = f"scheduled__{start:%Y%m%dT%H}"
        return SyncRun(run_id, start, start + timedelta(hours=1), False, False, (), 0, "scheduled")

    def sync(run: SyncRun) -> dict:
        fetched = [fetch.fetch_directory(InsightIQHook(), run), fetch.fetch_contents(InsightIQHook(), run)]
        fetched += [fetch.fetch_account_shard(InsightIQHook(), run, k, SHARDS) for k in range(SHARDS)]
        return {"fetch": fetched, "transformed": transform_step(run)}

    first = sync(scheduled(now_hour - timedelta(hours=1)))
    assert first["transformed"]["directory"]["kind"] == "full"
    store = SnapshotStore()
    accounts = incremental_fetch.contents_accounts(store.read(store.current(), "accounts"))
    invalid = {
        r["user_id"] for r in httpx.get(f"{sandbox.insightiq_url}/_sandbox/creators/invalid").json()["data"]
    }
    snapshot_accounts = store.read(store.current(), "accounts")
    owner = dict(
        zip(snapshot_accounts["id"].to_pylist(), snapshot_accounts["user.id"].to_pylist(), strict=True)
    )
    per = -(-len(accounts) // 168)
    index = next(i for i, a in enumerate(accounts) if owner[a] not in invalid)
    cursor["hour"] = index // per
    creator = owner[accounts[index]]
    mutated = httpx.post(
        f"{sandbox.insightiq_url}/_sandbox/mutate",
        json={"user_ids": [creator], "kinds": ["contents"]},
        timeout=60,
    ).json()
    due = set(accounts[cursor["hour"] * per : (cursor["hour"] + 1) * per])
    new_items = set(mutated["items"]["contents"])
    assert new_items

    second_run = scheduled(now_hour + timedelta(hours=1))
    second = sync(second_run)
    assert second["transformed"]["directory"]["kind"] == "incremental"
    shard_results = second["fetch"][2:]
    assert sum(r.get("contents_accounts_due", 0) for r in shard_results) == len(due)
    stats = load_stats(second["transformed"]["stats_path"])
    assert stats.rows_read.get("contents_sweep", 0) >= 1
    with open(second["transformed"]["users_path"], encoding="utf-8") as fh:
        sent = fh.read()
    swept = {i for i in new_items if f'"{i}"' in sent}
    items_of_due = {
        i
        for i in new_items
        if any(a in due for a in [InsightIQHook().get_record("contents", i)["account"]["id"]])
    }
    assert items_of_due and items_of_due <= swept
