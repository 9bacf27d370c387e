"""
### creator_sync — InsightIQ creators into Insider One, one run per data interval

1. **fetch**, three branches at once: users and profiles (list endpoints); the interval's contents (one
   date-filtered list); per account shard (mapped, one per `insightiq_api` slot) its pages of the accounts
   list, their income transactions and, in targeted syncs, audience.
   Files land as Parquet under the run's data directory; XCom carries paths and counts only.
2. **transform**: one Insider user per InsightIQ user (the package's insider_mapping.yaml), validated with
   Insider's rules; rejects go to the dead-letter store with their reason and never cost a request.
3. **upsert**: batches of <= 1,000 users / 5 MB; a ledger of acknowledged events makes retries and re-runs
   send every event exactly once; unchanged creators are not re-sent.
4. **report**: fetched = sent + rejected + unchanged, plus retries and 429s; emits the Asset the profile
   audit listens to.

Backfills (`airflow backfill create`) send `skip_hook: true`, so history does not fire Architect journeys.
Params: `dry_run` (files and report, nothing sent), `account_ids` (targeted sync), `skip_hook` override,
`lookback_hours` (late-arriving data: also send events of the N hours before the interval that InsightIQ
synced late; empty = env `CREATOR_SYNC_LOOKBACK_HOURS`, default 0; acknowledged events are never re-sent).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

from creator_sync.dag_defaults import default_args, run_deadline
from creator_sync.retry import VENDOR_RETRY_POLICY
from creator_sync.sync.run_context import SCHEDULE


def account_shards() -> list[dict]:
    """One shard of accounts per `insightiq_api` pool slot (src/creator_sync/resources/pools.json)."""
    from creator_sync.limits import pool_slots

    slots = pool_slots("insightiq_api")
    return [{"shard": i, "of": slots} for i in range(slots)]


INSIDER_USERS = Asset(name="creator_sync_insider_users", uri="creator-sync://insider/users")

default_args = default_args(retry_policy=VENDOR_RETRY_POLICY)


@dag(
    # data intervals [previous tick, this tick): each run syncs exactly its interval, backfills included
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    # alert (CREATOR_SYNC_ALERT_CONN_ID) when a run is still going one interval after it was queued
    deadline=run_deadline(SCHEDULE),
    tags=["creator-sync", "insightiq", "insider"],
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", description="Produce files and the report; send nothing."),
        "account_ids": Param(
            [], type="array", items={"type": "string"}, description="Sync only these InsightIQ accounts."
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
    @task(pool="insightiq_api")
    def fetch_creators(**context) -> dict:
        from creator_sync.hooks.insightiq import InsightIQHook
        from creator_sync.sync.fetch import fetch_directory
        from creator_sync.sync.run_context import SyncRun

        return fetch_directory(InsightIQHook(), SyncRun.from_context(context))

    @task(pool="insightiq_api")
    def fetch_contents(**context) -> dict:
        from creator_sync.hooks.insightiq import InsightIQHook
        from creator_sync.sync import fetch
        from creator_sync.sync.run_context import SyncRun

        return fetch.fetch_contents(InsightIQHook(), SyncRun.from_context(context))

    @task(pool="insightiq_api", map_index_template="{{ task.op_kwargs['shard']['shard'] }}")
    def fetch_account_shard(shard: dict, **context) -> dict:
        from creator_sync.hooks.insightiq import InsightIQHook
        from creator_sync.sync.fetch import fetch_account_shard
        from creator_sync.sync.run_context import SyncRun

        run = SyncRun.from_context(context)
        return fetch_account_shard(InsightIQHook(), run, shard["shard"], shard["of"])

    @task
    def transform(creators: dict, contents: dict, shards: list[dict], **context) -> dict:
        from creator_sync.sync.run_context import SyncRun
        from creator_sync.sync.steps import transform_step

        return transform_step(SyncRun.from_context(context))

    @task(pool="insider_upsert")
    def upsert(transformed: dict, **context) -> dict:
        from creator_sync.hooks.insider import InsiderHook
        from creator_sync.sync.run_context import SyncRun
        from creator_sync.sync.steps import send_step

        return send_step(InsiderHook(), SyncRun.from_context(context), transformed)

    @task(outlets=[INSIDER_USERS])
    def report(creators: dict, contents: dict, shards: list[dict], transformed: dict, sent: dict, **context):
        from creator_sync.sync.run_context import SyncRun
        from creator_sync.sync.steps import report_step

        run = SyncRun.from_context(context)
        return report_step(run, creators, contents, shards, transformed, sent, context)

    creators = fetch_creators()
    shards = fetch_account_shard.expand(shard=account_shards())
    contents = fetch_contents()
    transformed = transform(creators, contents, shards)
    sent = upsert(transformed)
    report(creators, contents, shards, transformed, sent)


creator_sync()
