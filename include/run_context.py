"""Where a creator_sync run keeps its files, and what a run means (interval, skip_hook, filters).

The data directory is an `ObjectStoragePath` base (`CREATOR_SYNC_DATA_URL`, default `file://<AIRFLOW_HOME>/data`)
so a deployment can point it at shared storage; the transform reads Parquet with pyarrow and needs a
filesystem path, so only `file://` bases (a local disk or a volume shared by all workers) are accepted today.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from airflow.sdk import ObjectStoragePath

# The creator_sync schedule (a cron expression, UTC). Read by the DAG file and by manual runs that carry no
# data interval, so both agree on what "one interval" is.
SCHEDULE = os.environ.get("CREATOR_SYNC_SCHEDULE", "0 * * * *")


def last_complete_interval(run_after: datetime) -> tuple[datetime, datetime]:
    """The interval a manual run without a logical date syncs: the last whole one before it was triggered."""
    import pendulum
    from airflow.timetables.interval import CronDataIntervalTimetable

    interval = CronDataIntervalTimetable(SCHEDULE, timezone="UTC").infer_manual_data_interval(
        run_after=pendulum.instance(run_after)
    )
    return interval.start, interval.end


def data_base() -> ObjectStoragePath:
    default = f"file://{Path(os.environ.get('AIRFLOW_HOME', '~/airflow')).expanduser() / 'data'}"
    return ObjectStoragePath(os.environ.get("CREATOR_SYNC_DATA_URL") or default)


def local_dir(path: ObjectStoragePath) -> Path:
    if path.protocol not in ("file", "local", ""):
        raise ValueError(
            f"CREATOR_SYNC_DATA_URL={data_base()} uses {path.protocol!r}; the sync needs a file:// base "
            "(a local disk or a volume shared by every worker)"
        )
    return Path(path.path)


def run_dir_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def run_dir(run_id: str) -> Path:
    directory = local_dir(data_base() / "runs" / run_dir_name(run_id))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass(frozen=True)
class SyncRun:
    """What one creator_sync run syncs, derived from its context and Params."""

    run_id: str
    start: datetime
    end: datetime
    skip_hook: bool
    dry_run: bool
    account_ids: tuple[str, ...]

    @classmethod
    def from_context(cls, context) -> SyncRun:
        params, dag_run = context["params"], context["dag_run"]
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:  # triggered without a logical date (Airflow 3: no interval)
            start, end = last_complete_interval(dag_run.run_after)
        if start >= end:
            raise ValueError(f"run {dag_run.run_id} has an empty data interval ({start} .. {end})")
        override = str(params.get("skip_hook", "auto")).lower()
        run_type = getattr(dag_run, "run_type", "")
        is_backfill = str(getattr(run_type, "value", run_type)) == "backfill"
        skip_hook = is_backfill if override == "auto" else override == "true"
        accounts = params.get("account_ids") or []
        if isinstance(accounts, str):
            accounts = [a.strip() for a in accounts.split(",") if a.strip()]
        return cls(dag_run.run_id, start, end, skip_hook, bool(params.get("dry_run")), tuple(accounts))

    @property
    def dir(self) -> Path:
        return run_dir(self.run_id)
