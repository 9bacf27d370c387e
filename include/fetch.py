"""The sync's InsightIQ reads, planned to spend as few requests as the API allows.

- accounts, users, profiles: the global list endpoints (100 per request), or per account for a targeted sync;
- contents: ONE date-filtered list over all accounts (account_id is optional on /v1/social/contents);
- income transactions: per account (account_id is required), only where income is synced;
- audience: per account, only where audience is synced, and only in targeted syncs (see wants_audience).
Per-account work is split into shards, one per `insightiq_api` pool slot, run as mapped tasks.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from creator_sync.files import write_records_parquet
from creator_sync.hooks.insightiq import InsightIQHook
from include.run_context import SyncRun

INCOME_SYNCED = {"SYNCED", "PARTIAL_SYNCED"}


def _day_range(run: SyncRun) -> tuple[str, str]:
    """InsightIQ filters by whole days; the transform keeps only timestamps inside [start, end)."""
    return run.start.date().isoformat(), (run.end - timedelta(microseconds=1)).date().isoformat()


def _write(records, directory: Path, name: str) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.parquet"
    return {"path": str(path), "count": write_records_parquet(records, path)}


def fetch_directory(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    """Accounts, users and profiles of every creator in scope (all, or the run's account filter)."""
    out = run.dir / "fetch"
    if run.account_ids:
        accounts = [hook.get_account(account_id) for account_id in run.account_ids]
        user_ids = sorted({a["user"]["id"] for a in accounts})
        users = [hook.get_user(user_id) for user_id in user_ids]
        profiles = [p for account_id in run.account_ids for p in hook.list_profiles(account_id=account_id)]
    else:
        accounts, users, profiles = hook.list_accounts(), hook.list_users(), hook.list_profiles()
    return {
        "accounts": _write(accounts, out / "accounts", "accounts"),
        "users": _write(users, out / "users", "users"),
        "profiles": _write(profiles, out / "profiles", "profiles"),
        "requests": hook.stats,
    }


def fetch_contents(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    from_date, to_date = _day_range(run)
    if run.account_ids:
        records = (
            c
            for account_id in run.account_ids
            for c in hook.list_contents(from_date=from_date, to_date=to_date, account_id=account_id)
        )
    else:
        records = hook.list_contents(from_date=from_date, to_date=to_date)
    return {**_write(records, run.dir / "fetch" / "contents", "contents"), "requests": hook.stats}


def _shard_accounts(run: SyncRun, shard: int, of: int) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(run.dir / "fetch" / "accounts" / "accounts.parquet")
    rows = table.to_pylist()
    return [row for i, row in enumerate(sorted(rows, key=lambda r: r["id"])) if i % of == shard]


def _status(row: dict[str, Any], *path: str) -> str | None:
    return row.get(".".join(["data", *path, "status"]))


def wants_audience(run: SyncRun) -> bool:
    """Audience is fetched in targeted syncs (a webhook said the account changed): one request per
    account, and demographics move slowly, so scheduled runs do not spend the 10/s budget on it."""
    return bool(run.account_ids)


def fetch_account_shard(hook: InsightIQHook, run: SyncRun, shard: int, of: int) -> dict[str, Any]:
    """Income transactions and (daily) audience for this shard's accounts."""
    accounts = _shard_accounts(run, shard, of)
    from_date, to_date = _day_range(run)
    income = [a["id"] for a in accounts if _status(a, "income") in INCOME_SYNCED]
    audience = []
    if wants_audience(run):
        audience = [a["id"] for a in accounts if _status(a, "identity", "audience") == "SYNCED"]
    transactions = (
        t
        for account_id in income
        for t in hook.iter_records(
            "social_transactions", from_date=from_date, to_date=to_date, account_id=account_id
        )
    )
    out = run.dir / "fetch"
    result = {
        "shard": shard,
        "accounts": len(accounts),
        "transactions": _write(transactions, out / "transactions", f"shard-{shard}"),
        "audience": _write(
            (hook.get_audience(account_id) for account_id in audience), out / "audience", f"shard-{shard}"
        ),
        "requests": hook.stats,
    }
    return json.loads(json.dumps(result, default=str))
