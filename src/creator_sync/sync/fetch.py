"""The sync's InsightIQ reads, planned to spend as few requests as the API allows.

- users, profiles: the global list endpoints (100 per request), or per account for a targeted sync;
- contents: ONE date-filtered list over all accounts, over the days of the run's event window (its interval
  plus the look-back, see run_context.LOOKBACK_ENV); when the connection reads contents per account
  (creator_sync.sync.contents_read: the sources disagree on whether account_id is required) each shard
  lists its accounts' contents instead;
- accounts: split into shards, one per `insightiq_api` pool slot but the one fetch_creators and
  fetch_contents take in turn, run as mapped tasks: shard i of n reads
  every n-th page of the accounts list from page i (or every n-th account of a targeted sync), so the shards
  start at once, in parallel with users/profiles/contents, and no page is read twice;
- income transactions: per account (account_id is required), only where income is synced, in its shard,
  over the same days as contents;
- audience: per account, only where audience is synced, and only in targeted syncs (see wants_audience).

That is a full read. A scheduled run in CREATOR_SYNC_FETCH_MODE=incremental with a directory snapshot reads
the planner's sweep slices instead (creator_sync.sync.incremental_fetch; the dispatch is at the top of
fetch_directory and fetch_account_shard). A backfill run takes its files from the backfill range cache
(creator_sync.sync.backfill; a dispatch at the top of the three fetch functions): the full read above once
per chunk of days, not once per hourly run.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from creator_sync.files import write_records_parquet
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.http.errors import VendorError
from creator_sync.http.paging import DEFAULT_PAGE_LIMIT
from creator_sync.progress import client_requests, track
from creator_sync.sync import backfill
from creator_sync.sync.run_context import SyncRun

INCOME_SYNCED = {"SYNCED", "PARTIAL_SYNCED"}


def _day_range(run: SyncRun) -> tuple[str, str]:
    """The days of the run's event window [events_from, end) (= [start, end) without a look-back).

    InsightIQ filters by whole days; the transform keeps only timestamps inside the window."""
    return run.events_from.date().isoformat(), (run.end - timedelta(microseconds=1)).date().isoformat()


def _write(records, directory: Path, name: str) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.parquet"
    return {"path": str(path), "count": write_records_parquet(records, path)}


def fetch_directory(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    """Users and profiles of every creator in scope (all, or the run's account filter). The accounts
    themselves are written by the shards (fetch_account_shard). An incremental run reads its sweep slices
    instead (creator_sync.sync.incremental_fetch)."""
    if backfill.applies(run):  # a backfill run: from the range cache (sync/backfill.py)
        return backfill.fetch_directory(hook, run)
    from creator_sync.sync import incremental_fetch

    if (base := incremental_fetch.sweep_base(run)) is not None:
        return incremental_fetch.fetch_directory(hook, run, base)
    if run.account_ids:
        # the account's owner: one extra GET per filtered account (its shard reads it again to write it)
        return _targeted_directory(hook, run, [hook.get_record("accounts", a) for a in run.account_ids])
    return _directory_files(hook, run, hook.iter_records("users"), hook.iter_records("profiles"))


def _targeted_directory(hook: InsightIQHook, run: SyncRun, accounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The owners of a targeted run's `accounts` (records already read) and the accounts' profiles."""
    users = [hook.get_record("users", user_id) for user_id in sorted({a["user"]["id"] for a in accounts})]
    profiles = [p for account in accounts for p in hook.iter_records("profiles", account_id=account["id"])]
    return _directory_files(hook, run, users, profiles)


def _directory_files(hook: InsightIQHook, run: SyncRun, users, profiles) -> dict[str, Any]:
    out = run.dir / "fetch"
    return {
        "users": _write(users, out / "users", "users"),
        "profiles": _write(profiles, out / "profiles", "profiles"),
        "requests": hook.stats,
    }


def _account_contents(hook: InsightIQHook, account_ids, from_date: str, to_date: str):
    return (
        c
        for account_id in account_ids
        for c in hook.iter_records("contents", from_date=from_date, to_date=to_date, account_id=account_id)
    )


def fetch_contents(hook: InsightIQHook, run: SyncRun, *, in_task: bool = False) -> dict[str, Any]:
    """The run's contents. Per account for a targeted run; otherwise as the connection reads contents
    (creator_sync.sync.contents_read): one list over all accounts, or, per account, nothing here (the account
    shards read them; ``in_task``: this task reads them per account of the accounts list, as a backfill
    chunk does). A 400 asking for account_id switches the connection to per-account reads and this task
    reads this run's contents per account itself."""
    from creator_sync.sync import contents_read

    if backfill.applies(run):  # a backfill run: from the range cache (sync/backfill.py)
        return backfill.fetch_contents(hook, run)
    from_date, to_date = _day_range(run)
    out = run.dir / "fetch" / "contents"
    if run.account_ids:
        records = _account_contents(hook, run.account_ids, from_date, to_date)
        return {**_write(records, out, "contents"), "requests": hook.stats}
    in_task = in_task or run.run_type == "backfill"  # a backfill chunk: its shards' cache entries hold none
    mode = contents_read.for_hook(hook, run.dir)
    if mode == contents_read.PER_ACCOUNT and not in_task:
        return {**_write(iter(()), out, "contents"), "mode": mode, "read_by": "account shards"}
    if mode == contents_read.ALL_ACCOUNTS:
        try:
            written = _write(
                hook.iter_records("contents", from_date=from_date, to_date=to_date), out, "contents"
            )
            return {**written, "mode": mode, "requests": hook.stats}
        except VendorError as exc:
            if not contents_read.asks_for_account_id(exc):
                raise
            if contents_read.forced(hook) == contents_read.ALL_ACCOUNTS:
                raise exc.recast(
                    type(exc),
                    f"{exc}. Connection '{hook.conn_id}' forces {contents_read.CONTENTS_READ_EXTRA}="
                    f"{contents_read.ALL_ACCOUNTS} but InsightIQ requires account_id on this list: set the "
                    f"extra to {contents_read.AUTO} or {contents_read.PER_ACCOUNT}",
                ) from None
            contents_read.remember(hook.conn_id, f"HTTP 400 on the all-accounts list: {exc.vendor_message}")
        from creator_sync.sync import incremental_fetch

        if not in_task and incremental_fetch.sweep_base(run) is not None:
            # an incremental run: the per-account contents sweep of the next runs reads back a week
            # (plan.CONTENTS_SWEEP_HOURS), so this hour's contents arrive with it; no fleet-wide read here
            written = _write(iter(()), out, "contents")
            return {**written, "mode": contents_read.PER_ACCOUNT, "read_by": "the next runs' sweep"}
    accounts = (a["id"] for a in hook.iter_records("accounts") if contents_read.has_contents(a))
    written = _write(_account_contents(hook, accounts, from_date, to_date), out, "contents")
    return {**written, "mode": contents_read.PER_ACCOUNT, "read_by": "this task", "requests": hook.stats}


def shard_accounts(hook: InsightIQHook, run: SyncRun, shard: int, of: int) -> list[dict[str, Any]]:
    """Shard `shard` of `of`: every `of`-th page of the accounts list from page `shard`, or every
    `of`-th account of the run's account filter."""
    if run.account_ids:
        return [hook.get_record("accounts", account_id) for account_id in run.account_ids[shard::of]]
    return list(hook.iter_records("accounts", start_offset=shard * DEFAULT_PAGE_LIMIT, page_stride=of))


def _status(account: dict[str, Any], *product: str) -> str | None:
    """`data.<product...>.status` of an account (the per-product sync status)."""
    node: Any = account.get("data")
    for key in product:
        node = node.get(key) if isinstance(node, dict) else None
    return node.get("status") if isinstance(node, dict) else None


def wants_audience(run: SyncRun) -> bool:
    """Audience is fetched in targeted syncs (a webhook said the account changed): one request per
    account, and demographics move slowly, so scheduled runs do not spend the 10/s budget on it."""
    return bool(run.account_ids)


def fetch_account_shard(hook: InsightIQHook, run: SyncRun, shard: int, of: int) -> dict[str, Any]:
    """This shard's accounts, their income transactions and (targeted syncs) audience; in an incremental run
    its share of the income sweep (creator_sync.sync.incremental_fetch)."""
    if backfill.applies(run):  # a backfill run: from the range cache (sync/backfill.py)
        return backfill.fetch_account_shard(hook, run, shard, of)
    from creator_sync.sync import incremental_fetch

    if (base := incremental_fetch.sweep_base(run)) is not None:
        return incremental_fetch.fetch_income_sweep(hook, run, shard, of, base)
    return _shard_files(hook, run, shard, shard_accounts(hook, run, shard, of))


def _shard_files(
    hook: InsightIQHook, run: SyncRun, shard: int, accounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """Shard `shard`'s files: its `accounts` (records already read), their income transactions, (targeted
    syncs) audience and, when a scheduled or manual run reads contents per account, their contents (a
    backfill chunk's contents task reads them itself)."""
    from creator_sync.sync import contents_read

    from_date, to_date = _day_range(run)
    income = [a["id"] for a in accounts if _status(a, "income") in INCOME_SYNCED]
    audience = []
    if wants_audience(run):
        audience = [a["id"] for a in accounts if _status(a, "identity", "audience") == "SYNCED"]
    transactions = (
        t
        for account_id in track(
            income, f"shard {shard}: income", unit="accounts", gauges=client_requests(hook)
        )
        for t in hook.iter_records(
            "social_transactions", from_date=from_date, to_date=to_date, account_id=account_id
        )
    )
    out = run.dir / "fetch"
    result = {
        "shard": shard,
        "accounts": _write(accounts, out / "accounts", f"shard-{shard}"),
        "transactions": _write(transactions, out / "transactions", f"shard-{shard}"),
        "audience": _write(
            (hook.get_audience(account_id) for account_id in audience), out / "audience", f"shard-{shard}"
        ),
    }
    reads_contents = not run.account_ids and run.run_type != "backfill"
    if reads_contents and contents_read.for_hook(hook, run.dir) == contents_read.PER_ACCOUNT:
        mine = [a["id"] for a in accounts if contents_read.has_contents(a)]
        records = _account_contents(hook, mine, from_date, to_date)
        result["contents"] = _write(records, out / "contents", f"shard-{shard}")
    result["requests"] = hook.stats
    return json.loads(json.dumps(result, default=str))


def fetch_targeted(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    """Every read of a targeted run (`account_ids`) through one client, for the webhook fast path
    (creator_sync.sync.targeted): the files fetch_directory, fetch_contents and the account shards write, as
    one shard (`shard-0`). Each account is read once: its owner and its shard file come from the same record
    (the separate fetch tasks read it twice)."""
    if not run.account_ids:
        raise ValueError(f"run {run.run_id} has no account_ids: only a targeted run is read in one task")
    accounts = [hook.get_record("accounts", account_id) for account_id in run.account_ids]
    parts = {
        "creators": _targeted_directory(hook, run, accounts),
        "contents": fetch_contents(hook, run),
        "shard": _shard_files(hook, run, 0, accounts),
    }
    result = {name: {k: v for k, v in part.items() if k != "requests"} for name, part in parts.items()}
    return json.loads(json.dumps({**result, "requests": hook.stats}, default=str))
