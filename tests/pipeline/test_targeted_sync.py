"""The fast path of a targeted run (creator_sync.sync.targeted.sync_accounts, the DAG's first task) against
the sandboxes: after a full sync, creators change at InsightIQ; one call fetches, transforms and sends exactly
those creators, once each, the report reconciles, and a run with nothing new sends nothing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from creator_sync.attempt import Attempt
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.pipeline.transform import load_stats
from creator_sync.store import StateStore
from creator_sync.sync import fetch
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.snapshot import SnapshotStore
from creator_sync.sync.steps import report_step
from creator_sync.sync.targeted import sync_accounts

from .test_incremental_fetch import scheduled, sync

pytestmark = [pytest.mark.slow]
# InsightIQ requests/s at the sandbox and the client (tests/pipeline/conftest.py):
# each test's full sync of the fleet takes seconds; reads are counted, not timed
SANDBOX_RATE = 200
# 50 creators: each test's full sync reads every account (about 40 ms a request at the sandbox); the fleet
# still holds the three valid creators, one with several accounts, that the tests change
SANDBOX_CREATORS = 50

SLOTS = 4
_RUNS = itertools.count(1)


@pytest.fixture
def fleet(sandbox_env, shared_rate_budget, local_sync_store):
    """The sandbox fleet synced once in full (Insider and the snapshot hold it), as before any webhook."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    full = sync(scheduled(hour - timedelta(hours=1)))
    assert full["sent"]["users_sent"] > 0
    return sandbox_env


def targeted_run(accounts: list[str], *, dry_run: bool = False) -> SyncRun:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    run_id = f"insightiq_webhook__{next(_RUNS)}"
    return SyncRun(run_id, hour - timedelta(hours=1), hour, False, dry_run, tuple(accounts), 0, "manual")


def creators_with_their_accounts(sb, count: int) -> tuple[list[str], list[str]]:
    """`count` valid creators (one of them with several accounts) and every account they own."""
    listed = httpx.get(f"{sb.insightiq_url}/_sandbox/creators/invalid").json()["data"]
    invalid = {r["user_id"] for r in listed}
    store = SnapshotStore()
    accounts = store.read(store.current(), "accounts")
    owned: dict[str, list[str]] = {}
    for account_id, user_id in zip(accounts["id"].to_pylist(), accounts["user.id"].to_pylist(), strict=True):
        if user_id not in invalid:
            owned.setdefault(user_id, []).append(account_id)
    several = [u for u, a in owned.items() if len(a) > 1][:1]
    users = several + [u for u in owned if u not in several][: count - len(several)]
    assert len(users) == count and several, "the sandbox fleet has no creator with several accounts"
    return users, [a for u in users for a in owned[u]]


def test_a_targeted_run_sends_each_changed_creator_once_in_one_task_and_reconciles(fleet):
    users, accounts = creators_with_their_accounts(fleet, 3)
    before = fleet.insider_lookup(users)
    httpx.post(f"{fleet.insightiq_url}/_sandbox/mutate", json={"user_ids": users, "kinds": ["profiles"]})

    run = targeted_run(accounts)
    result = sync_accounts(run, Attempt("sync_accounts", 1), slots=SLOTS)

    # only the run's creators were transformed (not the snapshot's fleet), each sent once
    stats = load_stats(result["transformed"]["stats_path"])
    assert stats.fetched_creators == len(users)
    assert result["transformed"]["directory"]["kind"] == "targeted"
    assert result["sent"]["send"]["users_sent"] == len(users)
    after = fleet.insider_lookup(users)
    assert all(after[u]["attributes"] != before[u]["attributes"] for u in users)
    insider = fleet.stats("insider")
    assert insider["duplicate_events"] == 0
    report = report_step(run, result["transformed"], result["sent"])
    assert report["reconciled"], report["text"]
    assert (report["fetched_creators"], report["sent"]) == (len(users), len(users))
    assert report["insightiq_requests"] > 0 and report["insider_requests"] > 0  # both clients' counters

    # the same accounts with nothing new: fetched again, nothing sent (unchanged), still reconciled
    again_run = targeted_run(accounts)
    again = sync_accounts(again_run, Attempt("sync_accounts", 1), slots=SLOTS)
    assert again["sent"]["send"]["users_sent"] == 0
    assert again["sent"]["send"]["unchanged"] == len(users)
    assert report_step(again_run, again["transformed"], again["sent"])["reconciled"]


def test_the_fast_path_reads_each_account_once(fleet):
    """The separate fetch tasks read each account twice (owner lookup, shard file); one task reads it once and
    writes the same files."""
    _, accounts = creators_with_their_accounts(fleet, 3)
    fast = targeted_run(accounts)
    sync_accounts(fast, Attempt("sync_accounts", 1), slots=SLOTS)
    tasks = targeted_run(accounts)
    results = [
        fetch.fetch_directory(InsightIQHook(), tasks),
        fetch.fetch_contents(InsightIQHook(), tasks),
        *(fetch.fetch_account_shard(InsightIQHook(), tasks, k, SLOTS) for k in range(SLOTS)),
    ]
    requests = StateStore().run_client_totals(fast.run_id)["InsightIQ"]["requests"]
    assert requests == sum(r["requests"].get("requests", 0) for r in results) - len(accounts)
    files = {p.relative_to(fast.dir).parent for p in (fast.dir / "fetch").rglob("*.parquet")}
    assert files == {p.relative_to(tasks.dir).parent for p in (tasks.dir / "fetch").rglob("*.parquet")}


def test_a_dry_run_on_the_fast_path_sends_nothing_and_says_what_it_would_send(fleet):
    users, accounts = creators_with_their_accounts(fleet, 2)
    httpx.post(f"{fleet.insightiq_url}/_sandbox/mutate", json={"user_ids": users, "kinds": ["profiles"]})
    before = fleet.insider_lookup(users)
    run = targeted_run(accounts, dry_run=True)
    result = sync_accounts(run, Attempt("sync_accounts", 1), slots=SLOTS)
    assert fleet.insider_lookup(users) == before
    assert result["sent"]["dry_run"] is True and result["sent"]["send"]["users_sent"] == len(users)
    report = report_step(run, result["transformed"], result["sent"])
    assert report["dry_run"] and report["reconciled"] and report["text"].startswith("DRY RUN")


def one_account_of_a_creator_with_several(fleet) -> tuple[str, str]:
    users, accounts = creators_with_their_accounts(fleet, 1)
    return users[0], accounts[0]


def test_one_account_of_a_creator_with_several_is_synced_with_all_their_profiles(fleet):
    """A webhook names one account; the creator's attributes are built from all their accounts' profiles
    (platform counts summed, newest personal fields). With nothing changed, the run finds them unchanged."""
    user, account = one_account_of_a_creator_with_several(fleet)
    before = fleet.insider_lookup([user])
    run = targeted_run([account])
    result = sync_accounts(run, Attempt("sync_accounts", 1), slots=SLOTS)
    assert result["sent"]["send"]["users_sent"] == 0
    assert result["sent"]["send"]["unchanged"] == 1
    assert fleet.insider_lookup([user]) == before
    assert report_step(run, result["transformed"], result["sent"])["reconciled"]


def test_without_the_owners_completion_a_partial_creator_would_be_sent(fleet, monkeypatch):
    """The guard switched off: only the named account's profile is transformed, so the creator's attributes
    differ from what a full read gives, and the run sends them (wrong sums) to Insider."""
    from creator_sync.sync import incremental_fetch

    monkeypatch.setattr(incremental_fetch, "_complete_owners", lambda *args: None)
    _, account = one_account_of_a_creator_with_several(fleet)
    run = targeted_run([account])
    result = sync_accounts(run, Attempt("sync_accounts", 1), slots=SLOTS)
    assert result["sent"]["send"]["users_sent"] == 1
