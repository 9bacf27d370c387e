"""Retention: what the daily `creator_sync_maintenance` DAG deletes, and why those ages are safe.

Settings (days; types and defaults: docs/settings.md):
- `CREATOR_SYNC_RETAIN_RUN_FILES_DAYS`: a run directory (fetched Parquet, Insider JSON Lines,
  report.md; ~50 MB per run at 100k creators) whose newest file is older. Run files are for looking into a
  recent run; nothing reads them once the run is finished (the report and dead letters are in the state DB).
  The same cut-off applies to a run's per-user outcomes (`run_users`: one row per creator the run planned,
  so it grows by the fleet size per full run), its per-attempt client counters (`run_client_stats`) and send
  claims whose lease ran out before it: they exist to compute the run's report, which is stored on its own.
- `CREATOR_SYNC_RETAIN_LEDGER_DAYS` (at least 7; 9 in the incremental fetch mode):
  acknowledged-event rows acknowledged longer ago.
  The ledger is what keeps a re-run, a retry, the look-back or a backfill from sending an event twice: an
  event is only fetched again by a run whose window covers the event's date. Scheduled runs look back
  `CREATOR_SYNC_LOOKBACK_HOURS` at most, so their events are safe after a few days; a backfill re-reads the
  days it covers. Keep this setting longer than the oldest interval you will ever backfill (a backfill of
  days whose ledger rows were deleted sends their events to Insider again, and Insider appends events).
  The setting must also exceed the look-back and, with CREATOR_SYNC_FETCH_MODE=incremental, the income
  sweep's 8 days (9 days at least), or the scheduled runs themselves could re-send.
- `CREATOR_SYNC_RETAIN_DEAD_LETTERS_DAYS`: dead letters created longer ago, replayed or not;
  the report lists what was deleted per reason, so nothing goes without a trace.

The attribute hashes (one row per creator) and in-flight batches (each must be resolved) are never deleted.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from creator_sync import settings, storage
from creator_sync.errors import CreatorSyncConfigError

log = logging.getLogger(__name__)

RUN_FILES_ENV = "CREATOR_SYNC_RETAIN_RUN_FILES_DAYS"
LEDGER_ENV = "CREATOR_SYNC_RETAIN_LEDGER_DAYS"
DEAD_LETTERS_ENV = "CREATOR_SYNC_RETAIN_DEAD_LETTERS_DAYS"
MIN_LEDGER_DAYS = 7
DAG_ID = "creator_sync_maintenance"


def retention_days(env: str, environ: dict[str, str] | None = None) -> int:
    return getattr(settings.load(environ), env.removeprefix(settings.PREFIX).lower())


def ledger_days(environ: dict[str, str] | None = None) -> int:
    """The ledger's retention, refused when it would let a scheduled run (with its look-back) re-send."""
    days = retention_days(LEDGER_ENV, environ)
    from creator_sync.sync.fetch_mode import FETCH_MODE_ENV, INCREMENTAL, fetch_mode
    from creator_sync.sync.plan import INCOME_SWEEP_HOURS

    lookback_hours = settings.load(environ).lookback_hours
    floor = max(MIN_LEDGER_DAYS, lookback_hours // 24 + 2)
    because = f"CREATOR_SYNC_LOOKBACK_HOURS={lookback_hours}"
    mode = fetch_mode(environ)
    if mode == INCREMENTAL and floor < INCOME_SWEEP_HOURS // 24 + 2:
        # the weekly income sweep re-reads each income account's transactions of the last 7 days + 1
        floor, because = INCOME_SWEEP_HOURS // 24 + 2, f"{FETCH_MODE_ENV}={mode} (the weekly income sweep)"
    if days < floor:
        raise CreatorSyncConfigError(
            f"{LEDGER_ENV}={days} is too short: acknowledged events must outlive every window a run re-reads "
            f"(at least {floor} days with {because}; keep it longer than the oldest interval you will "
            f"backfill)"
        )
    return days


@dataclass
class Freed:
    run_dirs: list[str] = field(default_factory=list)
    run_files: int = 0
    run_bytes: int = 0
    ledger_rows: int = 0
    run_detail_rows: int = 0  # run_users + run_client_stats + expired send_claims and send_leases
    dead_letters: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        letters = ", ".join(f"{r}: {n}" for r, n in sorted(self.dead_letters.items())) or "none"
        return "\n".join(
            [
                "| freed | count |",
                "|---|---|",
                f"| run directories | {len(self.run_dirs)} ({self.run_files} files, "
                f"{self.run_bytes / 1e6:.1f} MB) |",
                f"| acknowledged-event ledger rows | {self.ledger_rows} |",
                f"| run detail rows (per-user outcomes, client counters, expired claims) | "
                f"{self.run_detail_rows} |",
                f"| dead letters | {sum(self.dead_letters.values())} ({letters}) |",
                "",
                "Cut-offs: " + ", ".join(f"{k} before {v}" for k, v in self.cutoffs.items()) + ".",
            ]
        )


def _modified(item: Any) -> datetime | None:
    """Last modification of a file: local stat, or the object store's LastModified/mtime."""
    if storage.is_local(item):
        return datetime.fromtimestamp(storage.local_path(item).stat().st_mtime, UTC)
    info = item.fs.info(item.path)
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _newest(directory: Any) -> datetime | None:
    files = storage.local_path(directory).rglob("*") if storage.is_local(directory) else directory.rglob("*")
    stamps = [m for f in files if f.is_file() and (m := _modified(f)) is not None]
    return max(stamps) if stamps else None


def purge_run_files(root: Any, before: datetime, freed: Freed) -> None:
    """Delete every run directory under `root`/runs whose newest file is older than `before`."""
    runs = root / "runs"
    if storage.is_local(runs):
        if not storage.local_path(runs).is_dir():
            return
        children = sorted(storage.local_path(runs).iterdir())
    else:
        children = sorted(runs.iterdir(), key=str) if runs.exists() else []
    for child in children:
        if not child.is_dir():
            continue
        newest = _newest(child)
        if newest is not None and newest >= before:
            continue
        files, size = storage.tree_size(child)
        storage.remove_tree(child, parent=runs)
        freed.run_dirs.append(child.name)
        freed.run_files += files
        freed.run_bytes += size


def purge_state(
    store,
    ledger_before: datetime,
    letters_before: datetime,
    freed: Freed,
    runs_before: datetime | None = None,
) -> None:
    """Delete acknowledged events, dead letters and (with `runs_before`) the per-run detail rows older than
    the cut-offs (one transaction)."""
    from creator_sync.store.schema import (
        acknowledged_events,
        dead_letters,
        run_client_stats,
        run_users,
        send_claims,
        send_leases,
    )

    with store.write() as conn:
        if runs_before is not None:
            freed.run_detail_rows = sum(
                conn.execute(stmt).rowcount or 0
                for stmt in (
                    run_users.delete().where(run_users.c.updated_at < runs_before),
                    run_client_stats.delete().where(run_client_stats.c.updated_at < runs_before),
                    send_claims.delete().where(send_claims.c.lease_until < runs_before.timestamp()),
                    send_leases.delete().where(send_leases.c.lease_until < runs_before.timestamp()),
                )
            )
        done = conn.execute(
            acknowledged_events.delete().where(acknowledged_events.c.acked_at < ledger_before)
        )
        freed.ledger_rows = done.rowcount or 0
        old = dead_letters.c.created_at < letters_before
        counts = conn.execute(sa.select(dead_letters.c.reason, sa.func.count()).where(old).group_by("reason"))
        freed.dead_letters = {reason: n for reason, n in counts}
        conn.execute(dead_letters.delete().where(old))


def run_maintenance(run_id: str, *, now: datetime | None = None, store=None, root=None) -> dict[str, Any]:
    """Delete what is past its retention, log and store (StateStore.save_run_report) what was freed."""
    from creator_sync.store import StateStore

    now = now or datetime.now(UTC)
    cutoffs = {
        "run files": now - timedelta(days=retention_days(RUN_FILES_ENV)),
        "ledger": now - timedelta(days=ledger_days()),
        "dead letters": now - timedelta(days=retention_days(DEAD_LETTERS_ENV)),
    }
    freed = Freed(cutoffs={k: f"{v:%Y-%m-%d %H:%M} UTC" for k, v in cutoffs.items()})
    store = store or StateStore()
    purge_run_files(root if root is not None else storage.data_root(), cutoffs["run files"], freed)
    purge_state(store, cutoffs["ledger"], cutoffs["dead letters"], freed, cutoffs["run files"])
    text = f"### creator-sync maintenance `{run_id}`\n\n{freed.render()}"
    log.info("%s", text)
    figures = asdict(freed)
    store.save_run_report(DAG_ID, run_id, figures, text, ok=True)
    return {**figures, "text": text}
