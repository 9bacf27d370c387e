"""The fetch engine: the InsightIQ reads of a sync run, as the DAG's fetch tasks call them.

A run's reads follow ONE strategy, picked by `pick` from the run (its kind, creator_sync.sync.fetch_mode,
and the backfill cache's settings) and run by the task entry points below:

- `BACKFILL_CACHE` (creator_sync.sync.backfill): a full-scope backfill run while the range cache is on takes
  its files from the cache; a missing entry is filled by the full read over a chunk of days;
- `fetch_mode.SWEEP` (creator_sync.sync.incremental_fetch): a scheduled run in CREATOR_SYNC_FETCH_MODE=
  incremental with a directory snapshot reads the planner's sweep slices;
- `fetch_mode.TARGETED` (creator_sync.sync.targeted_fetch): a run with `account_ids` reads only those
  accounts (`fetch_targeted`: every read in one task, the webhook fast path);
- `fetch_mode.FULL_READ` (creator_sync.sync.full_fetch): every other run (and a backfill run outside the
  cache) reads the whole directory, the run's contents and each income account's transactions.

Each strategy builds on the primitive reads (creator_sync.sync.insightiq_reads) and none imports another or
this module: the backfill cache gets the full read it fills its entries with from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.sync import backfill, full_fetch, incremental_fetch, targeted_fetch
from creator_sync.sync import fetch_mode as modes
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.snapshot import Meta

BACKFILL_CACHE = "backfill_cache"

Result = dict[str, Any]


@dataclass(frozen=True)
class Strategy:
    """How a run reads: `kind` and the task bodies (directory, contents, one account shard)."""

    kind: str
    directory: Callable[[InsightIQHook, SyncRun], Result]
    contents: Callable[[InsightIQHook, SyncRun, bool], Result]
    shard: Callable[[InsightIQHook, SyncRun, int, int], Result]


FULL = Strategy(
    modes.FULL_READ,
    full_fetch.fetch_directory,
    lambda hook, run, in_task: full_fetch.fetch_contents(hook, run, in_task=in_task),
    full_fetch.fetch_account_shard,
)
TARGETED = Strategy(
    modes.TARGETED,
    targeted_fetch.fetch_directory,
    lambda hook, run, in_task: targeted_fetch.fetch_contents(hook, run),
    targeted_fetch.fetch_account_shard,
)
# A cache entry is filled by the full read over the chunk's days (looked up when it runs).
CACHED = Strategy(
    BACKFILL_CACHE,
    lambda hook, run: backfill.cached(
        "directory", hook, run, lambda chunk: full_fetch.fetch_directory(hook, chunk)
    ),
    lambda hook, run, in_task: backfill.cached(
        "contents", hook, run, lambda chunk: full_fetch.fetch_contents(hook, chunk)
    ),
    lambda hook, run, shard, of: backfill.cached(
        f"accounts-{shard}-of-{of}",
        hook,
        run,
        lambda chunk: full_fetch.fetch_account_shard(hook, chunk, shard, of),
    ),
)


def sweep(base: Meta) -> Strategy:
    """The incremental strategy of a run starting from snapshot `base`."""
    return Strategy(
        modes.SWEEP,
        lambda hook, run: incremental_fetch.fetch_directory(hook, run, base),
        lambda hook, run, in_task: incremental_fetch.fetch_contents(hook, run, in_task=in_task),
        lambda hook, run, shard, of: incremental_fetch.fetch_income_sweep(hook, run, shard, of, base),
    )


def pick(run: SyncRun) -> Strategy:
    """The run's strategy. Past the backfill cache it reads CREATOR_SYNC_FETCH_MODE (an invalid value fails
    the task) and the snapshot the run would start from (incremental_fetch.directory_kind)."""
    if backfill.applies(run):
        return CACHED
    kind, base = incremental_fetch.directory_kind(run)
    if kind == modes.SWEEP and base is not None:
        return sweep(base)
    return TARGETED if kind == modes.TARGETED else FULL


def fetch_directory(hook: InsightIQHook, run: SyncRun) -> Result:
    """Users and profiles of every creator in scope (all, or the run's account filter); an incremental run's
    directory sweep slices. The accounts themselves are written by the shards (fetch_account_shard)."""
    return pick(run).directory(hook, run)


def fetch_contents(hook: InsightIQHook, run: SyncRun, *, in_task: bool = False) -> Result:
    """The run's contents: per account for a targeted run; otherwise as the connection reads contents
    (creator_sync.sync.contents_read): one list over all accounts, or, per account, nothing here (the account
    shards read them; ``in_task``: this task reads them per account of the accounts list)."""
    return pick(run).contents(hook, run, in_task)


def fetch_account_shard(hook: InsightIQHook, run: SyncRun, shard: int, of: int) -> Result:
    """Shard `shard` of `of`: its accounts, their income transactions and (targeted runs) audience; in an
    incremental run its share of the income (and per-account contents) sweep."""
    return pick(run).shard(hook, run, shard, of)


def fetch_targeted(hook: InsightIQHook, run: SyncRun) -> Result:
    """Every read of a targeted run (`account_ids`) through one client, for the webhook fast path
    (creator_sync.sync.targeted): the files of the three fetch tasks, as one shard (`shard-0`)."""
    if not run.account_ids:
        raise ValueError(f"run {run.run_id} has no account_ids: only a targeted run is read in one task")
    return targeted_fetch.fetch_all(hook, run)
