"""How a creator_sync run reads InsightIQ: `CREATOR_SYNC_FETCH_MODE` and the run's kind decide.

- `incremental` (default): a scheduled run starts from the directory snapshot (creator_sync.sync.snapshot)
  and re-reads only the planner's slices (creator_sync.sync.plan.plan_hourly); with no snapshot yet it reads
  in full and the snapshot is written from that read.
- `full`: every run reads the whole directory and every income account's transactions (the snapshot is
  still written, so switching back to incremental starts from fresh data).

Whatever the mode: targeted runs (the `account_ids` Param, from the webhook receiver) read their accounts
and merge them into the snapshot; manual runs without an account filter read in full (an operator syncing one
interval gets exactly that interval's data); backfills keep their own reads and leave the snapshot alone.
"""

from __future__ import annotations

from creator_sync import settings

FETCH_MODE_ENV = "CREATOR_SYNC_FETCH_MODE"
INCREMENTAL, FULL = "incremental", "full"
FETCH_MODES = (INCREMENTAL, FULL)

# what a run does with the directory (see `run_kind`)
TARGETED, BACKFILL, FULL_READ, SWEEP = "targeted", "backfill", "full", "incremental"


def fetch_mode(environ: dict[str, str] | None = None) -> str:
    """`CREATOR_SYNC_FETCH_MODE` (case and surrounding blanks ignored; unset or empty = incremental). Any
    other value raises CreatorSyncConfigError (a ValueError: the task fails at once, no retries)."""
    return settings.load(environ).fetch_mode


def run_kind(run_type: str, account_ids: tuple[str, ...], has_snapshot: bool, mode: str) -> str:
    """targeted | backfill | full | incremental: what a run reads (`run_type`: Airflow's DagRunType value)."""
    if account_ids:
        return TARGETED
    if run_type == "backfill":
        return BACKFILL
    if mode == INCREMENTAL and run_type == "scheduled" and has_snapshot:
        return SWEEP
    return FULL_READ
