"""
### creator_sync_history — a newly connected account's past, sent once

Hourly at minute 30. When an account first appears (in the directory snapshot the hourly `creator_sync` runs
keep, or by an `ACCOUNTS.CONNECTED` webhook), InsightIQ holds only its recent items; this DAG fetches the
rest and sends it to Insider as events with `skip_hook: true` (history stays out of Architect journeys).

1. **discover**: snapshot accounts without an `account_history` row are recorded as owed (the first run
   records the fleet it finds as known: their past predates the path).
2. **request** (pool `insightiq_api`): for at most `CREATOR_SYNC_HISTORY_MAX_ACCOUNTS_PER_RUN` owed accounts,
   oldest first, the fetch-historic jobs of their contents, social transactions and payouts from
   `CREATOR_SYNC_HISTORY_FROM_DATE`. Offboarded creators' accounts and accounts InsightIQ answers 404 for
   are recorded `skipped` with the reason (they hold no account back).
3. **read** (pool `insightiq_api`): accounts whose jobs are `CREATOR_SYNC_HISTORY_JOB_WAIT_S` old: their
   lists in date windows up to the end of the hour they were first seen in (where the hourly runs take
   over), through the creator_sync transform, identifiers and events only.
4. **send** (pool `insider_upsert`): every window through the exactly-once sender (ledger, claims,
   lost-answer settlement), `skip_hook: true`; then the accounts are recorded as sent.
5. **report**: the run's figures in the run reports.

Its tasks take the same pools and rate limiters as `creator_sync` with priority weight 0 (absolute): a
queued `creator_sync` task gets a free slot first, and each run is bounded by the accounts it takes, so it
never holds the hourly run back for long. Details: docs/operations.md, "History on first connection".
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from creator_sync.dag_defaults import default_args
from creator_sync.limits import INSIDER_UPSERT_POOL, INSIGHTIQ_POOL

LOW = {"priority_weight": 0, "weight_rule": "absolute"}


@dag(
    schedule="30 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2),
    tags=["creator-sync", "insightiq", "insider", "history"],
    doc_md=__doc__,
)
def creator_sync_history():
    @task(**LOW)
    def discover() -> dict:
        from creator_sync.store import StateStore
        from creator_sync.sync.history import discover as record_new
        from creator_sync.sync.history import snapshot_account_ids

        return record_new(StateStore(), snapshot_account_ids(), pendulum.now("UTC"))

    @task(pool=INSIGHTIQ_POOL, **LOW)
    def request(found: dict, **context) -> dict:
        from creator_sync import settings
        from creator_sync.hooks.insightiq import InsightIQHook
        from creator_sync.store import StateStore
        from creator_sync.sync.history import request_jobs

        config, state = settings.current(), StateStore()
        hook = InsightIQHook()
        try:
            rows = state.history_due(config.history_max_accounts_per_run)
            done = request_jobs(hook, state, rows, config.history_from_date, pendulum.now("UTC"))
        finally:
            _save_stats(state, context, hook)
        return {**found, "requested": done}

    @task(pool=INSIGHTIQ_POOL, **LOW)
    def read(requested: dict, **context) -> dict:
        from pathlib import Path

        from creator_sync import settings
        from creator_sync.hooks.insightiq import InsightIQHook
        from creator_sync.store import StateStore
        from creator_sync.sync.history import due, read_due, skip_gone
        from creator_sync.sync.run_context import run_dir

        config, state = settings.current(), StateStore()
        rows = due(
            state.history_due(config.history_max_accounts_per_run),
            pendulum.now("UTC"),
            config.history_job_wait_s,
        )
        if not rows:
            return {**requested, "accounts": [], "windows": []}
        hook = InsightIQHook()
        try:
            out = run_dir(context["run_id"])
            if not isinstance(out, Path):
                raise RuntimeError("creator_sync_history keeps its run files in a file:// data directory")
            out = out / "history"
            manifest = read_due(
                hook, rows, out_dir=out, from_date=config.history_from_date, days=config.history_window_days
            )
            skip_gone(state, manifest)
        finally:
            _save_stats(state, context, hook)
        return {**requested, **manifest}

    @task(pool=INSIDER_UPSERT_POOL, **LOW)
    def send(manifest: dict, **context) -> dict:
        from creator_sync.attempt import attempt_key
        from creator_sync.pipeline.upsert import upsert
        from creator_sync.store import StateStore
        from creator_sync.sync.history import finish, keep_malformed, send_windows

        attempt, run_id = attempt_key(context), context["run_id"]
        kept = keep_malformed(StateStore(), manifest, run_id)  # the dead letters, whatever the send does
        totals = send_windows(manifest, run_id=run_id, send=lambda options: upsert(attempt, options))
        recorded = finish(StateStore(), manifest, totals, run_id)
        rest = {k: v for k, v in manifest.items() if k != "windows"}
        return {**rest, **totals, "accounts_sent": recorded, "dead_letters": kept}

    @task(**LOW)
    def report(sent: dict, **context) -> dict:
        from creator_sync.store import StateStore

        recorded = sent.get("accounts_sent", sent["accounts"])
        text = (
            f"creator_sync_history: {sent.get('new', 0)} account(s) first seen; jobs requested for "
            f"{sent['requested']['accounts']} ({sent['requested']['jobs']} jobs); history sent for "
            f"{len(recorded)} of {len(sent['accounts'])} account(s) read in "
            f"{sent['windows']} window(s): {sent['users_sent']} users, {sent['events_sent']} events "
            f"({sent['events_already_acknowledged']} already acknowledged, "
            f"{sent.get('claimed_elsewhere', 0)} user(s) held by another run: their accounts stay owed)."
        )
        StateStore().save_run_report("creator_sync_history", context["run_id"], sent, text, True)
        return {**sent, "text": text}

    report(send(read(request(discover()))))


def _save_stats(state, context, hook) -> None:
    from creator_sync.attempt import attempt_key

    attempt = attempt_key(context)
    state.save_client_stats(context["run_id"], attempt.task_key, attempt.try_number, hook.vendor, hook.stats)
    hook.close()


creator_sync_history()
