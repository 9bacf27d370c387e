"""`GET /v1/social/contents` under either reading of the sources (creator_sync.sync.contents_read): one list
over all accounts, or per account when InsightIQ requires `account_id` - switched by the 400 that asks for
it, remembered per connection, forced by the connection extra `contents_read`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.http.errors import CreatorSyncConfigError, VendorBadRequestError
from creator_sync.pipeline.sources import discover_inputs
from creator_sync.sync import contents_read, fetch
from creator_sync.sync.run_context import SyncRun

RATE = 200
SHARDS = 4


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

    with SandboxServers(creators=200, seed=7, extra_args=["--insightiq-rate", str(RATE)]) as sb:
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
    from_date, to_date = fetch._day_range(run)
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
