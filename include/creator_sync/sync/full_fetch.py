"""The full read of a run: every creator in scope, the run's contents, each income account's transactions.

- users, profiles: the global list endpoints (100 per request);
- contents: ONE date-filtered list over all accounts, over the days of the run's event window (its interval
  plus the look-back, see run_context.LOOKBACK_ENV); when the connection reads contents per account
  (creator_sync.sync.contents_read: the sources disagree on whether account_id is required) each shard
  lists its accounts' contents instead;
- accounts: split into shards, one per `insightiq_api` pool slot but the one fetch_creators and
  fetch_contents take in turn, run as mapped tasks: shard i of n reads every n-th page of the accounts list
  from page i, so the shards start at once, in parallel with users/profiles/contents, and no page is read
  twice;
- income transactions and payouts: per account (account_id is required), only where income is synced, in
  its shard, over the same days as contents.

Scheduled runs without a snapshot (or in CREATOR_SYNC_FETCH_MODE=full), manual runs without an account filter,
backfill runs outside the backfill range cache and the cache's own chunk reads read this way
(creator_sync.sync.fetch picks the strategy). Audience is not read (targeted runs only,
creator_sync.sync.targeted_fetch).
"""

from __future__ import annotations

from typing import Any

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.sync import contents_read
from creator_sync.sync import insightiq_reads as reads
from creator_sync.sync.run_context import SyncRun


def fetch_directory(hook: InsightIQHook, run: SyncRun) -> dict[str, Any]:
    """Users and profiles of every creator; the accounts are written by the shards."""
    return reads.directory_files(hook, run, hook.iter_records("users"), hook.iter_records("profiles"))


def fetch_contents(hook: InsightIQHook, run: SyncRun, *, in_task: bool = False) -> dict[str, Any]:
    """The run's contents as the connection reads them (creator_sync.sync.contents_read): one list over all
    accounts, or, per account, nothing here (the account shards read them; ``in_task``: this task reads them
    per account of the accounts list, as a backfill run does: its shards read none). A 400 asking for
    account_id switches the connection to per-account reads and this task reads the run's contents per
    account itself."""
    in_task = in_task or run.run_type == "backfill"
    mode = contents_read.for_hook(hook, run.dir)
    if mode == contents_read.PER_ACCOUNT and not in_task:
        return reads.no_contents(run, mode, "account shards")
    if mode == contents_read.ALL_ACCOUNTS and (written := reads.all_accounts_contents(hook, run)) is not None:
        return written
    return reads.contents_per_account(hook, run)


def fetch_account_shard(hook: InsightIQHook, run: SyncRun, shard: int, of: int) -> dict[str, Any]:
    """Shard `shard` of `of`: its pages of the accounts list, their income transactions and, when a scheduled
    or manual run reads contents per account, their contents (a backfill run's contents task reads them)."""
    accounts = reads.shard_accounts(hook, run, shard, of)
    contents = run.run_type != "backfill"
    return reads.shard_files(hook, run, shard, accounts, audience=False, contents=contents)
