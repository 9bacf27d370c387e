"""Where a creator_sync run keeps its files, and what a run means (interval, look-back, skip_hook, filters).

The data directory (`CREATOR_SYNC_DATA_URL`, default `file://<AIRFLOW_HOME>/data`, or `s3://bucket/prefix`)
is resolved by creator_sync.storage: a run directory is a local Path or an ObjectStoragePath.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import ObjectStoragePath

from creator_sync import settings, storage
from creator_sync.errors import CreatorSyncConfigError

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


# A run id used as a directory name as it is: ASCII letters, digits, `_`, `.`, `-`, starting with a letter or
# digit (so never `.`, `..` or a hidden name), at most 120 characters. Every other id is encoded.
_PLAIN_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,119}")
_READABLE_CHARS = 80


def run_dir_name(run_id: str) -> str:
    """The directory name of a run: the run id itself when it is plain (see _PLAIN_RUN_ID), else a readable
    part (unsafe characters replaced by `_`, leading dots and dashes dropped) + `~` + 16 hex digits of the
    id's SHA-256. Plain names contain no `~`, so two different run ids never share a directory; no name is
    dot-only or holds a path separator."""
    if _PLAIN_RUN_ID.fullmatch(run_id):
        return run_id
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).lstrip("._-")[:_READABLE_CHARS] or "run"
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{readable}~{digest}"


def run_dir(run_id: str) -> storage.RunPath:
    """The run's directory: a local Path (created) or an ObjectStoragePath in an existing bucket."""
    runs = storage.data_root() / "runs"
    return storage.ensure_dir(storage.child(runs, run_dir_name(run_id)))


MAX_ACCOUNTS_ENV = "CREATOR_SYNC_MAX_ACCOUNTS_PER_RUN"
DEFAULT_MAX_ACCOUNTS = settings.default("max_accounts_per_run")


def max_accounts_per_run(environ: dict[str, str] | None = None) -> int:
    """How many accounts one targeted run may name (`CREATOR_SYNC_MAX_ACCOUNTS_PER_RUN`, default 500). The
    webhook receiver splits larger bursts into several runs; a run triggered with more fails at once."""
    return settings.load(environ).max_accounts_per_run


def checked_account_ids(value: object) -> tuple[str, ...]:
    """The `account_ids` Param as a tuple of InsightIQ ids: a list or a comma-separated string, each id
    matching vendor_ids.RECORD_ID_PATTERN, at most max_accounts_per_run() of them (CreatorSyncConfigError
    otherwise, naming the Param and the setting)."""
    from creator_sync import vendor_ids

    if not value:
        return ()
    if isinstance(value, str):
        value = [a.strip() for a in value.split(",") if a.strip()]
    if not isinstance(value, (list, tuple)):
        raise CreatorSyncConfigError(
            f"Param account_ids must be a list of account ids, got {type(value).__name__}"
        )
    accounts = tuple(dict.fromkeys(value))
    bad = [a for a in accounts if not vendor_ids.is_record_id(a)]
    if bad:
        raise CreatorSyncConfigError(
            f"Param account_ids holds {len(bad)} invalid id(s), e.g. {repr(bad[0])[:80]}: each must match "
            f"{vendor_ids.RECORD_ID_PATTERN}"
        )
    limit = max_accounts_per_run()
    if len(accounts) > limit:
        raise CreatorSyncConfigError(
            f"Param account_ids names {len(accounts)} accounts; a targeted run takes at most {limit} "
            f"({MAX_ACCOUNTS_ENV}). Split the accounts over several runs, or leave account_ids empty for "
            f"a full run."
        )
    return accounts


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

    @property
    def contents_from(self) -> datetime:
        """Start of the window [contents_from, end) the run reads contents over. A targeted run
        (`account_ids`: a webhook named its accounts, e.g. CONTENTS.UPDATED: their items' counts moved)
        reads its accounts' contents over the whole engagement window (CREATOR_SYNC_ENGAGEMENT_WINDOW_DAYS),
        so the transform recomputes their rolling engagement attributes; every other run reads its event
        window. Events are kept only inside [events_from, end) either way."""
        if not self.account_ids:
            return self.events_from
        window = self.end - timedelta(days=settings.current().engagement_window_days)
        return min(self.events_from, window)

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
        accounts = checked_account_ids(params.get("account_ids"))
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
