"""The reads of a targeted run (`account_ids`, e.g. from the webhook receiver): only the run's accounts.

- accounts: by id (one GET each), split over the shards as every n-th account of the filter; an account
  InsightIQ answers 404 for (deleted) is not written, and the transform step takes it as disconnected
  (creator_sync.sync.account_status.vanished: its platform's attributes are cleared);
- users, profiles: the accounts' owners by id and each account's profiles;
- contents: per account of the filter, over the days of the engagement window
  (CREATOR_SYNC_ENGAGEMENT_WINDOW_DAYS, SyncRun.contents_from): the run sends its accounts' recomputed
  engagement attributes; at about 2 posts per account in 30 days that is the same one request per account
  as a read of the event window (one page holds 100 items);
- income transactions and payouts: per income-synced account, in its shard (a PAYOUTS.* or TRANSACTIONS.*
  webhook starts such a run for its account);
- audience: per audience-synced account (one request each): a webhook said the account changed, while
  scheduled runs do not spend the 10/s budget on demographics that move slowly.

`fetch_all` makes every read in one task (the webhook fast path, creator_sync.sync.targeted): the files of
the directory, contents and shard reads, as one shard (`shard-0`), each account read once.
"""

from __future__ import annotations

import json
from typing import Any

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.sync import insightiq_reads as reads
from creator_sync.sync.run_context import SyncRun


def _directory(hook: InsightIQHook, run: SyncRun, accounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The owners of `accounts` (records already read) and the accounts' profiles."""
    users = [hook.get_record("users", user_id) for user_id in sorted({a["user"]["id"] for a in accounts})]
    profiles = [p for account in accounts for p in hook.iter_records("profiles", account_id=account["id"])]
    return reads.directory_files(hook, run, users, profiles)


def _shard(hook: InsightIQHook, run: SyncRun, shard: int, accounts: list[dict[str, Any]]) -> dict[str, Any]:
    return reads.shard_files(hook, run, shard, accounts, audience=True, contents=False)


def fetch_directory(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    """The owners and profiles of the run's accounts: one extra GET per account (its shard reads it again
    to write it)."""
    return _directory(hook, run, reads.existing_accounts(hook, run.account_ids))


def fetch_contents(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    """The contents of each of the run's accounts over the engagement window (SyncRun.contents_from): the
    transform recomputes the accounts' rolling engagement attributes from them (a CONTENTS.UPDATED webhook
    says counts moved) and keeps events only inside the run's event window."""
    from_date, to_date = reads.contents_day_range(run)
    records = reads.account_contents(hook, run.account_ids, from_date, to_date, missing_ok=True)
    return {**reads.write(records, run.dir / "fetch" / "contents", "contents"), "requests": hook.stats}


def fetch_account_shard(hook: InsightIQHook, run: SyncRun, shard: int, of: int) -> dict[str, Any]:
    """Every `of`-th of the run's accounts from `shard`, their income transactions and audience."""
    return _shard(hook, run, shard, reads.shard_accounts(hook, run, shard, of))


def fetch_all(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    """Every read of the run through one client, as one shard: each account is read once, its owner and its
    shard file come from the same record (the separate fetch tasks read it twice)."""
    accounts = reads.existing_accounts(hook, run.account_ids)
    parts = {
        "creators": _directory(hook, run, accounts),
        "contents": fetch_contents(hook, run),
        "shard": _shard(hook, run, 0, accounts),
    }
    result = {name: {k: v for k, v in part.items() if k != "requests"} for name, part in parts.items()}
    return json.loads(json.dumps({**result, "requests": hook.stats}, default=str))
