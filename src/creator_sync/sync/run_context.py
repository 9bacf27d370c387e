"""Where a creator_sync run keeps its files, and what a run means (interval, look-back, skip_hook, filters).

The data directory (`CREATOR_SYNC_DATA_URL`, default `file://<AIRFLOW_HOME>/data`, or `s3://bucket/prefix`)
is resolved by creator_sync.storage: a run directory is a local Path or an ObjectStoragePath.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import ObjectStoragePath

from creator_sync import settings, storage
from creator_sync.http.errors import CreatorSyncConfigError

# The creator_sync schedule (a cron expression, UTC). Read by the DAG file and by manual runs that carry no
# data interval, so both agree on what "one interval" is.
SCHEDULE = settings.current().schedule

# Late-arriving data: how many hours before its interval a run also looks for events (content items,
# income transactions) that InsightIQ synced after the earlier run had finished. The event ledger keeps
# events already acknowledged from being sent twice. 0 = exactly the run's own interval.
LOOKBACK_ENV = "CREATOR_SYNC_LOOKBACK_HOURS"
LOOKBACK_PARAM = "lookback_hours"


def _hours(value: object) -> int | None:
    """A whole, non-negative number of hours, or None when `value` is not one."""
    if isinstance(value, bool):  # True is an int to Python, not an hour count to a person
        return None
    if isinstance(value, int):
        hours = value
    elif isinstance(value, float) and value.is_integer():
        hours = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        hours = int(value.strip())
    else:
        return None
    return hours if hours >= 0 else None


def lookback_hours(param: object = None, environ: dict[str, str] | None = None) -> int:
    """The run's look-back in hours: the `lookback_hours` Param when set, else `CREATOR_SYNC_LOOKBACK_HOURS`,
    else 0. A value that is not a whole number >= 0 raises CreatorSyncConfigError (a ValueError; the DAG's
    retry policy fails the task at once instead of retrying) naming where it came from and how to fix it."""
    if param is not None and not (isinstance(param, str) and not param.strip()):
        hours = _hours(param)
        if hours is None:
            raise CreatorSyncConfigError(
                f"Param {LOOKBACK_PARAM}={param!r} is invalid: it must be a whole number of hours >= 0 "
                f"(e.g. 3; 0 = only the run's own data interval). Fix it in the trigger form / run conf, or "
                f"leave it empty (null) to use the environment variable {LOOKBACK_ENV}."
            )
        return hours
    return settings.load(environ).lookback_hours


def last_complete_interval(run_after: datetime) -> tuple[datetime, datetime]:
    """The interval a manual run without a logical date syncs: the last whole one before it was triggered."""
    import pendulum
    from airflow.timetables.interval import CronDataIntervalTimetable

    interval = CronDataIntervalTimetable(SCHEDULE, timezone="UTC").infer_manual_data_interval(
        run_after=pendulum.instance(run_after)
    )
    return interval.start, interval.end


def data_base() -> ObjectStoragePath:
    return storage.data_base()


def local_dir(path: ObjectStoragePath) -> Path:
    """The local directory of a file:// path (the default SQLite state store lives there)."""
    if not storage.is_local(path):
        raise ValueError(f"{path} is object storage ({path.protocol}://), not a local directory")
    return storage.local_path(path)


def run_dir_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def run_dir(run_id: str) -> storage.RunPath:
    """The run's directory: a local Path (created) or an ObjectStoragePath in an existing bucket."""
    return storage.ensure_dir(storage.data_root() / "runs" / run_dir_name(run_id))


@dataclass(frozen=True)
class SyncRun:
    """What one creator_sync run syncs, derived from its context and Params."""

    run_id: str
    start: datetime
    end: datetime
    skip_hook: bool
    dry_run: bool
    account_ids: tuple[str, ...]
    lookback_hours: int = 0  # events (not attributes) are read from `events_from`, see LOOKBACK_ENV
    run_type: str = ""  # Airflow's DagRunType value (scheduled, manual, backfill, ...): see sync.fetch_mode

    def __post_init__(self) -> None:
        if isinstance(self.lookback_hours, bool) or not isinstance(self.lookback_hours, int):
            raise TypeError(f"lookback_hours must be an int, got {self.lookback_hours!r}")
        if self.lookback_hours < 0:
            raise ValueError(f"lookback_hours must be >= 0, got {self.lookback_hours}")

    @property
    def events_from(self) -> datetime:
        """Start of the event window [events_from, end): the interval's start minus the look-back."""
        return self.start - timedelta(hours=self.lookback_hours)

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
        run_type = str(getattr(run_type, "value", run_type))
        is_backfill = run_type == "backfill"
        skip_hook = is_backfill if override == "auto" else override == "true"
        accounts = params.get("account_ids") or []
        if isinstance(accounts, str):
            accounts = [a.strip() for a in accounts.split(",") if a.strip()]
        return cls(
            dag_run.run_id,
            start,
            end,
            skip_hook,
            bool(params.get("dry_run")),
            tuple(accounts),
            lookback_hours(params.get(LOOKBACK_PARAM)),
            run_type,
        )

    @property
    def dir(self) -> storage.RunPath:
        return run_dir(self.run_id)
