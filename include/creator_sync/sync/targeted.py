"""The fast path of a targeted creator_sync run (`account_ids`, e.g. from the webhook receiver): every step
before the report in ONE task process.

A targeted run carries a few dozen accounts at most: about five InsightIQ requests each, so on the full
path (three fetch tasks, four of them mapped, then transform and upsert: eight task processes over three
dependency levels) its wall time is mostly Airflow's per-task cost, not its work. `sync_accounts` runs
the same step functions in one process, writing the same files under the run directory:

1. the reads (creator_sync.sync.fetch.fetch_targeted: the files of fetch_creators, fetch_contents and one
   account shard; each account is read once);
2. the transform (creator_sync.sync.steps.transform_step: the accounts are merged into the directory
   snapshot, and only the run's own creators are transformed - the run's files hold only its accounts);
3. the exactly-once send (creator_sync.pipeline.upsert.upsert, the code of InsiderUpsertOperator:
   ledger, claims, attribute-hash skip, in-flight checks).

The report task (with its Asset event) then runs as on the full path. Client counters are stored per task
attempt under the task's key (InsightIQ and Insider apart), so the report adds retried attempts up.

The InsightIQ client spends the share of the `insightiq_api` slots the task holds (the DAG gives it every
slot, so with the in-process `local` limiter backend it gets the whole limit, as the fetch tasks together
did; a shared backend gives every client the whole limit anyway).
"""

from __future__ import annotations

import logging
from typing import Any

from creator_sync.attempt import Attempt, attempt_key
from creator_sync.sync.run_context import SyncRun

log = logging.getLogger(__name__)


def sync_accounts(run: SyncRun, attempt: Attempt, *, slots: int = 1, state_url: str | None = None) -> dict:
    """Fetch, transform and send a targeted run's accounts; returns `{"fetched", "transformed", "sent"}`
    (`transformed` and `sent` are what the transform task and the upsert operator return)."""
    from creator_sync.hooks.insightiq import InsightIQHook
    from creator_sync.http.limiter import build_limiter
    from creator_sync.limits import INSIGHTIQ_POOL
    from creator_sync.pipeline.upsert import SendOptions, upsert
    from creator_sync.store import StateStore
    from creator_sync.sync.fetch import fetch_targeted
    from creator_sync.sync.steps import transform_step

    if not run.account_ids:
        raise ValueError(f"run {run.run_id} has no account_ids: it takes the full path, not sync_accounts")
    hook = InsightIQHook(limiters={INSIGHTIQ_POOL: build_limiter(INSIGHTIQ_POOL, slots=slots)})
    try:
        fetched = fetch_targeted(hook, run)
    finally:
        StateStore(state_url).save_client_stats(
            run.run_id, attempt.task_key, attempt.try_number, hook.vendor, hook.stats
        )
        hook.close()
    log.info("targeted fetch of %d account(s): %s", len(run.account_ids), fetched)
    transformed = transform_step(run)
    options = SendOptions(
        users_path=transformed["users_path"],
        run_id=run.run_id,
        rejected_path=transformed["rejected_path"],
        malformed_path=transformed["malformed_path"],
        clears_path=transformed["clears_path"],
        skip_hook=transformed["skip_hook"],
        dry_run=transformed["dry_run"],
        state_url=state_url,
    )
    sent = upsert(attempt, options, log=log)
    return {"fetched": fetched, "transformed": transformed, "sent": sent}


def sync_step(context: Any, slots: int) -> dict | None:
    """The DAG's first task: `sync_accounts` for a targeted run (its results, for the report task), None for
    any other run (it takes the fetch tasks)."""
    run = SyncRun.from_context(context)
    if not run.account_ids:
        return None
    return sync_accounts(run, attempt_key(context), slots=slots)
