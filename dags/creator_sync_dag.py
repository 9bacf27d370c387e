"""
### creator_sync — InsightIQ creators into Insider One, one run per data interval

0. **sync_accounts** (the first task, a branch): a *targeted* run (`account_ids`, e.g. from the webhook
   receiver) does its fetch, transform and upsert right here, in one task process, and goes on to **report**
   (the fast path: a few dozen accounts are little work, so the full path's task processes were most of
   their wall time; creator_sync.sync.targeted). Every other run (scheduled, manual, backfill) goes on to the
   fetch tasks below.
1. **fetch** (InsightIQ fetch operators), two branches at once, as many tasks as `insightiq_api` slots:
   users and profiles (`fetch_creators`), then the interval's contents (`fetch_contents`, one date-filtered
   list), in one slot; per account shard (`fetch_account_shard`, mapped, one per remaining slot) its pages
   of the accounts list and their income transactions. No fetch task waits for a slot, so the shards (the
   bulk of the requests, split evenly) start together and end together. Parquet lands under the run's data
   directory; XCom carries paths and counts only. With `CREATOR_SYNC_FETCH_MODE=incremental` (default) a
   scheduled run re-reads only rotating slices of the directory and of the income accounts on top of the
   stored directory snapshot (a full read when there is none yet); `full` reads everything every run.
2. **transform** (TaskFlow, pure pandas): first the run's reads are merged into the directory snapshot;
   one Insider user per InsightIQ user (the package's insider_mapping.yaml), validated with Insider's rules;
   rejects and records without their id go to the dead letters with their reason and never cost a request.
3. **upsert** (`InsiderUpsertOperator`, the one exactly-once sender): claims its users, drops events
   already acknowledged (ledger), skips unchanged creators, sends batches of <= 1,000 users / 5 MB, and
   checks an unanswered batch with the Profile API instead of re-sending it; then removes the attributes of
   platforms a creator has no connected account on (clears.jsonl, Delete User Attribute, same budget).
4. **report** (after upsert, or after sync_accounts on the fast path): the run's totals over every task
   attempt: fetched = sent + rejected + unchanged (+ claimed by another run), events, requests / retries /
   429s per vendor; stored in the state store (run_reports), report.md and the run note. A reconciliation
   gap fails this task. A run that reconciles emits the Asset the profile audit listens to (through an
   alias outlet, so a dry run emits none).

A targeted run's steps are the same functions with the same files (its reads also fetch each account's
audience); `max_active_runs=1` keeps runs of either path one at a time, so the directory snapshot has one
writer. Backfills (`airflow backfill create`) send `skip_hook: true`, so history does not fire Architect
journeys, and read InsightIQ once per chunk of days, not once per run (the backfill range cache,
sync/backfill.py).
Params: `dry_run` (files and a report of what would be sent; nothing sent or recorded, no Asset event),
`account_ids` (targeted sync: the fast path), `skip_hook` override, `lookback_hours` (late-arriving data:
also send events of the N hours before the interval that InsightIQ synced late; empty = env
`CREATOR_SYNC_LOOKBACK_HOURS`, default 0; acknowledged events are never re-sent).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task

from creator_sync.assets import INSIDER_USERS_SENT
from creator_sync.dag_defaults import default_args, run_deadline
from creator_sync.limits import INSIGHTIQ_POOL, pool_slots
from creator_sync.operators import (
    InsiderUpsertOperator,
    InsightIQAccountShardFetchOperator,
    InsightIQContentsFetchOperator,
    InsightIQCreatorsFetchOperator,
)
from creator_sync.sync.run_context import SCHEDULE

INSIGHTIQ_SLOTS = pool_slots(INSIGHTIQ_POOL)
# no more fetch tasks at once than insightiq_api slots: fetch_creators then fetch_contents hold one slot in
# turn, the account shards (mapped) one each, so no shard waits for a slot and the shards end together
ACCOUNT_SHARDS = max(1, INSIGHTIQ_SLOTS - 1)
# What sync_accounts follows (a branch skips its other direct downstream tasks): the report is on both paths;
# on the full path it waits for the upsert (its trigger rule waits for every upstream task to finish).
FAST_PATH = ["report"]
FULL_PATH = ["fetch_creators", "fetch_account_shard", *FAST_PATH]


def _transformed(key: str) -> str:
    """A template of one key of the transform task's XCom (rendered when the upsert runs)."""
    return "{{ ti.xcom_pull(task_ids='transform')['" + key + "'] }}"


@dag(
    # data intervals [previous tick, this tick): each run syncs exactly its interval, backfills included
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=3),
    # alert (CREATOR_SYNC_ALERT_CONN_ID) when a run is still going one interval after it was queued
    deadline=run_deadline(SCHEDULE),
    tags=["creator-sync", "insightiq", "insider"],
    doc_md=__doc__,
    params={
        "dry_run": Param(
            False,
            type="boolean",
            description="Produce files and a report of what would be sent; send nothing.",
        ),
        "account_ids": Param(
            [],
            type=["array", "string"],
            items={"type": "string"},
            description="Sync only these InsightIQ accounts (a list, or one comma-separated string).",
        ),
        "skip_hook": Param(
            "auto",
            enum=["auto", "true", "false"],
            description="auto: true for backfills, false otherwise (Architect journeys fire on new data).",
        ),
        "lookback_hours": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            description=(
                "Late-arriving data: also fetch and send content/income events from this many hours before "
                "the data interval (InsightIQ may sync them after the earlier run finished). Events already "
                "acknowledged are never sent twice. Empty: env CREATOR_SYNC_LOOKBACK_HOURS (default 0 = "
                "exactly the interval)."
            ),
        ),
    },
)
def creator_sync():
    # every insightiq_api slot: no other InsightIQ task runs meanwhile, so its one client may spend the
    # whole limit (creator_sync.sync.targeted); a full run holds them only while it picks its path
    @task.branch(pool=INSIGHTIQ_POOL, pool_slots=INSIGHTIQ_SLOTS)
    def sync_accounts(**context) -> list[str]:
        """Targeted run: InsightIQ fetch, transform and Insider upsert of its accounts in this process, then
        the report. Any other run: the fetch tasks."""
        from creator_sync.sync.targeted import sync_step

        synced = sync_step(context, slots=INSIGHTIQ_SLOTS)
        if synced is None:
            return FULL_PATH
        context["ti"].xcom_push(key="transformed", value=synced["transformed"])
        context["ti"].xcom_push(key="sent", value=synced["sent"])
        return FAST_PATH

    route = sync_accounts()
    creators = InsightIQCreatorsFetchOperator(task_id="fetch_creators")
    contents = InsightIQContentsFetchOperator(task_id="fetch_contents")
    shards = InsightIQAccountShardFetchOperator.partial(
        task_id="fetch_account_shard",
        pool=INSIGHTIQ_POOL,  # a mapped task's pool is fixed at partial(); the operator default applies later
        of=ACCOUNT_SHARDS,
        map_index_template="{{ task.shard }}",
    ).expand(shard=list(range(ACCOUNT_SHARDS)))

    # one XCom (return_value), not one per key (each a round trip to the API server): the upsert's fields
    # read their keys from it when it runs (_transformed)
    @task(multiple_outputs=False)
    def transform(**context) -> dict:
        from creator_sync.sync.run_context import SyncRun
        from creator_sync.sync.steps import transform_step

        return transform_step(SyncRun.from_context(context))

    transformed = transform()
    route >> [creators, shards]
    creators >> contents  # one slot for both: with the shards, as many fetch tasks as slots
    [contents, shards] >> transformed

    upsert = InsiderUpsertOperator(
        task_id="upsert",
        users_path=_transformed("users_path"),
        rejected_path=_transformed("rejected_path"),
        malformed_path=_transformed("malformed_path"),
        clears_path=_transformed("clears_path"),
        skip_hook=_transformed("skip_hook"),
        dry_run=_transformed("dry_run"),
    )
    transformed >> upsert

    # after the full path's upsert, or after sync_accounts when it took the fast path (upsert skipped).
    # Its figures are ONE XCom (return_value): a `dict` return would otherwise push every key as its own
    # XCom, one round trip to the API server each (36 keys). It also emits the Asset event (no task of its
    # own: each task after the fetch costs a task start and a scheduler hand-over on the run's wall time)
    @task(
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        multiple_outputs=False,
        outlets=[INSIDER_USERS_SENT],
    )
    def report(transformed: dict | None, sent: dict | None, **context) -> dict:
        from creator_sync.sync.run_context import SyncRun
        from creator_sync.sync.steps import announce_users, report_step

        run = SyncRun.from_context(context)
        if run.account_ids:  # the fast path: sync_accounts transformed and sent
            ti = context["ti"]
            transformed = ti.xcom_pull(task_ids="sync_accounts", key="transformed")
            sent = ti.xcom_pull(task_ids="sync_accounts", key="sent")
        summary = report_step(run, transformed, sent)  # a run that does not reconcile fails here
        announce_users(summary, context["outlet_events"])
        return summary

    summary = report(transformed, upsert.output)
    route >> summary


creator_sync()
