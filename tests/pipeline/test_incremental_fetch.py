"""CREATOR_SYNC_FETCH_MODE=incremental against the sandboxes, through the DAG's real task bodies: the first
scheduled run reads in full and writes the snapshot; after /_sandbox/mutate the next one re-reads only its
sweep slices, sends every creator's current row (the re-read ones with their new values) and the income
sweep's transactions from before its interval, for a fraction of the requests."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.pipeline.transform import load_stats
from creator_sync.sync import fetch, incremental_fetch
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.snapshot import SnapshotStore
from creator_sync.sync.steps import transform_step

pytestmark = [pytest.mark.slow]
# InsightIQ requests/s at the sandbox and the client (tests/pipeline/conftest.py):
# the runs' reads are counted, not timed
SANDBOX_RATE = 200

SHARDS = 2
_TRIES = itertools.count(1)


@pytest.fixture
def synced(sandbox_env, shared_rate_budget, local_sync_store):
    return sandbox_env


def upsert(run: SyncRun, transformed: dict) -> dict:
    from creator_sync.operators import InsiderUpsertOperator

    op = InsiderUpsertOperator(
        task_id="upsert",
        users_path=transformed["users_path"],
        rejected_path=transformed["rejected_path"],
        malformed_path=transformed["malformed_path"],
        clears_path=transformed["clears_path"],
        skip_hook=run.skip_hook,
        dry_run=run.dry_run,
        run_id=run.run_id,
    )
    ti = SimpleNamespace(task_id="upsert", map_index=-1, try_number=next(_TRIES))
    result = op.execute(context={"ti": ti})
    return {**result["send"], "clear": result["clear"]}


def sync(run: SyncRun) -> dict:
    """The DAG's task bodies in order; `requests` = InsightIQ requests of the fetch tasks."""
    results = [
        fetch.fetch_directory(InsightIQHook(), run),
        fetch.fetch_contents(InsightIQHook(), run),
        *(fetch.fetch_account_shard(InsightIQHook(), run, k, SHARDS) for k in range(SHARDS)),
    ]
    transformed = transform_step(run)
    return {
        "fetch": results,
        "requests": sum(r["requests"].get("requests", 0) for r in results),  # no request: no key
        "transformed": transformed,
        "stats": load_stats(transformed["stats_path"]),
        "users": {
            line["identifiers"]["uuid"]: line
            for line in map(json.loads, open(transformed["users_path"], encoding="utf-8"))
        },
        "sent": upsert(run, transformed),
    }


def scheduled(start: datetime) -> SyncRun:
    return SyncRun(
        f"scheduled__{start:%Y%m%dT%H}", start, start + timedelta(hours=1), False, False, (), 0, "scheduled"
    )


def test_the_second_scheduled_run_reads_only_its_slices_and_sends_what_changed(synced, monkeypatch):
    # the sweep cursor (below) is set to read page 0 of each directory list; the second run's interval is the
    # next hour, so transactions the sandbox dates "now" lie before it (only the sweep's window has them)
    cursor = {"hour": 0}
    monkeypatch.setattr(incremental_fetch, "sweep_hour", lambda run: cursor["hour"])
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    store = SnapshotStore()

    first = sync(scheduled(now_hour - timedelta(hours=1)))
    meta = store.current()
    assert meta is not None and first["transformed"]["directory"]["kind"] == "full"
    assert (
        meta.sizes["users"]
        == first["stats"].fetched_creators
        == len(first["users"]) + sum(first["stats"].rejected.values())
    )

    invalid = {
        r["user_id"] for r in httpx.get(f"{synced.insightiq_url}/_sandbox/creators/invalid").json()["data"]
    }
    profiles = store.read(meta, "profiles")["user.id"].to_pylist()
    in_slice = [u for u in dict.fromkeys(profiles[:90]) if u not in invalid and u not in profiles[100:]][:3]
    outside = [u for u in dict.fromkeys(profiles[100:]) if u not in invalid and u not in profiles[:100]][:2]
    accounts = store.read(meta, "accounts")
    owner = dict(zip(accounts["id"].to_pylist(), accounts["user.id"].to_pylist(), strict=True))
    # cursor h reads directory page h % 24 and income account h % 168 (fewer than 168 here): a valid payer
    cursor["hour"] = next(h for h in (0, 24, 48) if owner[meta.income_accounts[h]] not in invalid)
    payer = owner[meta.income_accounts[cursor["hour"]]]
    mutate = f"{synced.insightiq_url}/_sandbox/mutate"
    httpx.post(mutate, json={"user_ids": in_slice + outside}, timeout=60).raise_for_status()
    paid = httpx.post(
        mutate, json={"user_ids": [payer], "kinds": ["transactions", "payouts"]}, timeout=60
    ).json()
    new_transactions, new_payouts = (
        set(paid["items"]["social_transactions"]),
        set(paid["items"]["social_payouts"]),
    )
    assert new_transactions and new_payouts

    second = sync(scheduled(now_hour + timedelta(hours=1)))
    assert second["transformed"]["directory"]["kind"] == "incremental"
    # every creator is in the run's output, the re-read ones with their new values, the others as stored
    assert second["users"].keys() == first["users"].keys()
    assert all(second["users"][u]["attributes"] != first["users"][u]["attributes"] for u in in_slice)
    assert all(second["users"][u]["attributes"] == first["users"][u]["attributes"] for u in outside)
    # the income sweep's transactions count although they are dated before the run's interval
    payer_events = json.dumps(second["users"].get(payer, {}).get("events", []))
    sent_ids = {t for t in new_transactions if f'"{t}"' in payer_events}
    assert new_transactions <= sent_ids
    assert second["stats"].rows_read.get("transactions_sweep", 0) >= len(new_transactions)
    # the payouts of the same accounts come with the same sweep, as payout_received
    assert {p for p in new_payouts if f'"{p}"' in payer_events} == new_payouts
    assert second["stats"].rows_read.get("payouts_sweep", 0) >= len(new_payouts)
    # only what changed is sent: the re-read mutated creators and the payer's new events
    assert second["sent"]["users_sent"] == len(set(in_slice) | {payer})
    # and it costs a fraction of the full read
    assert second["requests"] * 4 < first["requests"], (first["requests"], second["requests"])

    # the new snapshot holds the re-read values: a third run (another slice) keeps them
    assert store.current().run_id == scheduled(now_hour + timedelta(hours=1)).run_id


def test_a_targeted_run_merges_its_accounts_into_the_snapshot(synced):
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    sync(scheduled(now_hour - timedelta(hours=1)))
    store = SnapshotStore()
    before = store.current()
    profiles = store.read(before, "profiles")
    account_id, user_id = profiles["account.id"][0].as_py(), profiles["user.id"][0].as_py()
    httpx.post(f"{synced.insightiq_url}/_sandbox/mutate", json={"user_ids": [user_id]}, timeout=60)

    run = SyncRun(
        "insightiq_webhook__1", now_hour, now_hour + timedelta(hours=1), False, False, (account_id,)
    )
    targeted = sync(run)
    assert targeted["transformed"]["directory"]["kind"] == "targeted"
    assert list(targeted["users"]) == [user_id] or user_id not in targeted["users"]  # invalid: rejected
    after = store.current()
    assert after.base == before.version and after.sizes == before.sizes
    old = dict(zip(profiles["id"].to_pylist(), profiles["updated_at"].to_pylist(), strict=True))
    merged = store.read(after, "profiles")
    new = dict(zip(merged["id"].to_pylist(), merged["updated_at"].to_pylist(), strict=True))
    changed = {p for p in new if new[p] != old[p]}
    user_of = dict(zip(merged["id"].to_pylist(), merged["user.id"].to_pylist(), strict=True))
    assert changed and all(user_of[p] == user_id for p in changed)
