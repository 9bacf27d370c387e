"""
### creator_sync_maintenance — daily retention of run files, the event ledger and dead letters

Deletes run directories whose newest file is older than `CREATOR_SYNC_RETAIN_RUN_FILES_DAYS` (14),
acknowledged-event ledger rows older than `CREATOR_SYNC_RETAIN_LEDGER_DAYS` (90; keep it longer than the
oldest interval you will backfill, or those events are sent again) and dead letters older than
`CREATOR_SYNC_RETAIN_DEAD_LETTERS_DAYS` (90). Works for file:// and s3:// data directories. What was freed
is in the task log and in the run's report (the state DB). See creator_sync/retention.py and
docs/production.md.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from creator_sync.dag_defaults import default_args


@dag(
    schedule="30 3 * * *",  # daily, at a quiet hour (UTC)
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2),
    tags=["creator-sync", "maintenance"],
    description="Daily: delete old run files, ledger rows and dead letters; report what was freed",
    doc_md=__doc__,
)
def creator_sync_maintenance():
    @task
    def purge(**context) -> dict:
        from creator_sync.retention import run_maintenance

        return run_maintenance(context["run_id"])

    purge()


creator_sync_maintenance()
