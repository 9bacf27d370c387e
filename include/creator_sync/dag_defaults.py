"""What every creator-sync DAG shares (light: DAG files import it at parse time): owner, start date, retries
with exponential backoff and the vendor retry policy (creator_sync.retry), an execution timeout on every
task, the failure notifier and the run deadline.

Settings (types and defaults: docs/settings.md):
- `CREATOR_SYNC_TASK_TIMEOUT_MINUTES`: a task running longer is stuck, not slow, and is
  stopped (then retried like any failure). 180 minutes covers a full sync of ~100k creators at 10 requests/s.
- `CREATOR_SYNC_ALERT_CONN_ID` (unset = no alerts): see creator_sync.alerts.
- `CREATOR_SYNC_DEADLINE_MINUTES` (unset: the length of one creator_sync interval): a scheduled run still
  going this long after it was queued sends a deadline alert (it does not stop the run).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pendulum

from creator_sync import settings
from creator_sync.retry import DEFAULT_RETRY_ARGS, VENDOR_RETRY_POLICY

OWNER = "creator-sync"
START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")
TASK_TIMEOUT_ENV = "CREATOR_SYNC_TASK_TIMEOUT_MINUTES"
DEADLINE_ENV = "CREATOR_SYNC_DEADLINE_MINUTES"


def task_timeout() -> timedelta:
    return timedelta(minutes=settings.current().task_timeout_minutes)


def failure_callbacks() -> list:
    """[the alert notifier] when CREATOR_SYNC_ALERT_CONN_ID is set, else []."""
    from creator_sync.alerts import CreatorSyncAlert, alert_conn_id

    conn_id = alert_conn_id()
    return [CreatorSyncAlert(conn_id)] if conn_id else []


def default_args(**overrides: Any) -> dict[str, Any]:
    """`default_args` of a creator-sync DAG; `overrides` win (e.g. retries=2, retry_policy=...)."""
    args: dict[str, Any] = {
        "owner": OWNER,
        **DEFAULT_RETRY_ARGS,
        "retry_policy": VENDOR_RETRY_POLICY,
        "execution_timeout": task_timeout(),
    }
    callbacks = failure_callbacks()
    if callbacks:
        args["on_failure_callback"] = callbacks
    args.update(overrides)
    return args


# The manual DAGs' default_args (read at parse time, like default_args()).
DEFAULT_ARGS = default_args()


def interval_length(schedule: str) -> timedelta:
    """The length of one interval of a cron schedule (UTC), e.g. 1 hour for `0 * * * *`."""
    import pendulum
    from airflow.timetables.interval import CronDataIntervalTimetable

    interval = CronDataIntervalTimetable(schedule, timezone="UTC").infer_manual_data_interval(
        run_after=pendulum.instance(datetime(2026, 1, 5, 12, 30))
    )
    return timedelta(seconds=(interval.end - interval.start).total_seconds())  # not pendulum's Interval


def run_deadline(schedule: str):
    """A Deadline Alert: a run still going one interval (or CREATOR_SYNC_DEADLINE_MINUTES) after it was queued
    sends an alert through the alert connection; None when alerts are off."""
    from creator_sync.alerts import alert_conn_id

    conn_id = alert_conn_id()
    if not conn_id:
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    deadline_minutes = settings.current().deadline_minutes

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes) if (minutes := deadline_minutes) else interval_length(schedule),
        callback=AsyncCallback(
            "creator_sync.alerts.CreatorSyncAlert", kwargs={"conn_id": conn_id, "kind": "deadline"}
        ),
        name="creator_sync run outlived its interval",
    )
