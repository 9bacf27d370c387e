"""
### creator_offboard — a creator left: erase their personal data at Insider and stop syncing them

1. **collect** (InsightIQ): the creators the webhook receiver queued (`ACCOUNTS.DISCONNECTED`) and the ids on
   the trigger form (InsightIQ user ids, or external ids looked up at InsightIQ). Each is checked against
   the offboarding rule (docs/offboarding.md): every account disconnected (read from InsightIQ, not taken
   from the webhook), or the user no longer exists at InsightIQ, or an operator asked. Gone creators go on
   the skip list at once, so no creator_sync run sends them again; the others leave the queue untouched.
2. **erase** (Insider Data Governance, 500 requests/min): anonymize each gone creator by `uuid`; Insider keeps
   the `uuid` as the last identifier and drops every PII attribute. A lost answer is checked through the
   Profile API before anything is sent again; 404 "no such user" means already gone.
3. **purge**: their rows in run files still on disk, their attribute hash, unanswered-batch entries and dead
   letters; one erasure-log entry each (time, reason, hashed user key, outcome: no PII).
4. **report**: erased / already gone / failed with reason, stored with the other run reports.

Params: `user_ids`, `external_ids` (operator requests), `dry_run` (list what would be erased, change
nothing). A creator is synced again after an `ACCOUNTS.CONNECTED` webhook for them.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from creator_sync.dag_defaults import DEFAULT_ARGS
from creator_sync.limits import INSIDER_GOVERNANCE_POOL, INSIGHTIQ_POOL
from creator_sync.operators.data_governance import InsiderAnonymizeOperator


@dag(
    dag_id="creator_offboard",
    description="A creator left: anonymize them at Insider, purge local copies, stop syncing them.",
    # the webhook receiver triggers a run per disconnect; the daily run picks up anything left queued
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["creator-sync", "insider", "insightiq", "privacy"],
    doc_md=__doc__,
    params={
        "user_ids": Param(
            [], type="array", items={"type": "string"}, description="InsightIQ user ids to offboard."
        ),
        "external_ids": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Our external ids of creators to offboard (looked up at InsightIQ).",
        ),
        "dry_run": Param(False, type="boolean", description="List what would be erased; change nothing."),
    },
)
def creator_offboard():
    @task(pool=INSIGHTIQ_POOL)
    def collect(**context) -> dict:
        from creator_sync.hooks.insightiq import InsightIQHook
        from creator_sync.offboard import steps
        from creator_sync.store import StateStore

        run = steps.OffboardRun.from_params(context["run_id"], context["params"])
        hook = InsightIQHook()
        try:
            return steps.collect(hook, run, StateStore(), steps.work_dir(run.run_id))
        finally:
            hook.close()

    @task(trigger_rule="all_done")
    def purge(**context) -> dict:
        from creator_sync.offboard import steps
        from creator_sync.store import StateStore

        run = steps.OffboardRun.from_params(context["run_id"], context["params"])
        collected = context["ti"].xcom_pull(task_ids="collect")
        results = str(steps.work_dir(run.run_id) / "results.jsonl")
        return steps.purge(run, collected, results, StateStore())

    @task(trigger_rule="all_done")
    def report(**context) -> dict:
        from creator_sync.offboard import steps
        from creator_sync.store import StateStore

        run = steps.OffboardRun.from_params(context["run_id"], context["params"])
        collected = context["ti"].xcom_pull(task_ids="collect")
        purged = context["ti"].xcom_pull(task_ids="purge")
        return steps.report(run, collected, purged, StateStore())

    erase = InsiderAnonymizeOperator(
        task_id="erase",
        pool=INSIDER_GOVERNANCE_POOL,
        input_path="{{ ti.xcom_pull(task_ids='collect')['candidates_path'] }}",
        output_path="{{ ti.xcom_pull(task_ids='collect')['results_path'] }}",
        dry_run="{{ params.dry_run }}",
    )
    collect() >> erase >> purge() >> report()


creator_offboard()
