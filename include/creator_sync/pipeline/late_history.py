"""Historic items InsightIQ lists after the history path read them: found by the runs that read them, and
the account's history reopened so the creator_sync_history DAG sends them.

InsightIQ answers a fetch-historic request with 202 and says nothing of when the job completes, so a job can
list items after the history path's read (creator_sync.sync.history). Those items are dated before the
account's `takeover_at`: no hourly run's event window holds them, and a run that reads them (the targeted run
an item-list webhook such as CONTENTS.ADDED starts, a sweep, a full run) drops them as outside its window. The
transform keeps the events of those rows (dated from the history from_date up to the run's event window) in
`early_events.parquet` (`EarlyRows`); `reopen_late_history` checks them against the state store: an event of
an account whose history is `sent`, dated before its takeover_at, that the event ledger does not hold, puts
the account's history back to `requested`, due at once. The next history run reads the account's windows again
and the ledger drops what Insider already acknowledged, so only the late items are sent, once, with
`skip_hook: true`. Events the ledger holds (the history path or an hourly run sent them) reopen nothing, nor
do accounts whose history is owed and not yet requested (pending) or not to be sent (skipped, known). A
`requested` account may be in a history run whose read missed the item: the check moves its `requested_at`,
and that run's finish leaves it owed (creator_sync.sync.history.finish).

The cost: the rows a run drops, dated ahead of its event window: one state query per chunk of their accounts
and one ledger look-up for the keys of the accounts whose history is sent; no InsightIQ request (the re-read
is the history DAG's, inside its per-run account cap).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from creator_sync import settings
from creator_sync.pipeline import events as ev
from creator_sync.pipeline.keys import event_key
from creator_sync.store.engine import chunks

log = logging.getLogger(__name__)

ACCOUNT = "account_id"  # the custom param that names an item's account
# the fetch files of the lists the history path sends (creator_sync.sync.history: CONTENTS, INCOME)
HISTORY_SOURCES = frozenset({"contents", "transactions", "payouts"})
EARLY_FILE = "early_events.parquet"
# the history statuses a late item reopens: `sent`, and `requested` (a history run may be between its read,
# which missed the item, and its finish: store.history.history_reopen)
REOPENED = ("sent", "requested")
EARLY_SCHEMA = pa.schema(
    [
        ("uuid", pa.string()),
        (ACCOUNT, pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("event_name", pa.string()),
        ("event_json", pa.string()),
    ]
)


class EarlyRows:
    """early_events.parquet (a context manager): the sendable events (no event-level reason) of the rows a
    run read dated in [since, before), `before` the start of the event window that drops them (the
    transform's `early`). `since`: the history from_date (no history window holds an item before it)."""

    def __init__(self, path: str | Path, since: datetime):
        self.path, self.since = Path(path), since
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(self.path, EARLY_SCHEMA)

    def __enter__(self) -> EarlyRows:
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()

    def add(self, chunk: pa.Table, spec, ts, before) -> int:
        """Write the chunk's early events (`ts`: its parsed timestamps); returns how many."""
        column = next((p.column for p in spec.custom if p.name == ACCOUNT), None)
        if spec.source not in HISTORY_SOURCES or column is None or not len(chunk) or before <= self.since:
            return 0
        early, early_ts = ev.in_interval(chunk, spec, self.since, before, ts=ts)
        if not len(early):
            return 0
        events = ev.build_events(early, early_ts, spec)
        table = pa.table(
            [
                events["uuid"],
                pc.cast(early[column], pa.string()),
                events["ts"],
                events["event_name"],
                events["event_json"],
            ],
            schema=EARLY_SCHEMA,
        )
        table = table.filter(pc.and_(pc.is_null(events["reason"]), pc.is_valid(table[ACCOUNT])))
        self.writer.write_table(table)
        return len(table)


def reopen_late_history(
    path: str | Path,
    state,
    *,
    mapping,
    due_from: datetime,
    offboarded: Callable[[Iterable[str]], set[str]] | None = None,
) -> int:
    """Reopen the history of the accounts with a late historic item among `path`'s early events (see the
    module docstring): `requested` with `requested_at` = `due_from`. Creators who left (`offboarded`) are
    left out: the history read drops them. Memory: the file's account column, then the events of the
    accounts whose history is sent (a full run's file holds most of the fleet's past; few of it is such an
    account's). Returns how many accounts it reopened."""
    path = Path(path)
    if not path.exists():
        return 0
    accounts = pq.read_table(path, columns=[ACCOUNT])[ACCOUNT].unique().to_pylist()
    takeovers: dict[str, datetime] = {}
    for part in chunks(sorted(accounts)):
        takeovers.update(state.history_sent_takeovers(part, REOPENED))
    if not takeovers:
        return 0
    rows = pq.read_table(path, filters=[(ACCOUNT, "in", sorted(takeovers))]).to_pylist()
    rows = [r for r in rows if r["ts"] < takeovers[r[ACCOUNT]]]
    left = offboarded({r["uuid"] for r in rows}) if offboarded and rows else set()
    owners: dict[str, set[str]] = {}
    for row in rows:
        if row["uuid"] not in left:
            key = event_key(row["uuid"], json.loads(row["event_json"]), mapping.key_params(row["event_name"]))
            owners.setdefault(key, set()).add(row[ACCOUNT])
    held = state.acknowledged(owners)
    late = sorted({a for key, accounts in owners.items() if key not in held for a in accounts})
    count = state.history_reopen(late, due_from) if late else 0
    if count:
        log.warning(
            "history: %d account(s) have items InsightIQ listed after their history was read; their history "
            "is owed again: %s",
            count,
            ", ".join(late[:20]),
        )
    return count


def early_rows(out_dir: str | Path, on: bool):
    """A creator_sync run's `EarlyRows` (early_events.parquet in `out_dir`, from the history from_date
    `CREATOR_SYNC_HISTORY_FROM_DATE`) as a context manager giving the transform's `early`; None when `on` is
    false (a dry run, or `CREATOR_SYNC_HISTORY_REOPEN_LATE` off)."""
    if not on:
        return contextlib.nullcontext()
    day = settings.current().history_from_date
    return EarlyRows(Path(out_dir) / EARLY_FILE, datetime(day.year, day.month, day.day, tzinfo=UTC))


def reopen_late(out_dir: str | Path, state, now: datetime, offboarded=None) -> int:
    """`reopen_late_history` of a run's early_events.parquet (its transform's `early_rows`), due at once:
    `requested_at` one job wait (`CREATOR_SYNC_HISTORY_JOB_WAIT_S`) before `now`. Returns how many accounts
    it reopened."""
    from creator_sync.pipeline.mapping import load_mapping

    due_from = now - timedelta(seconds=settings.current().history_job_wait_s)
    path = Path(out_dir) / EARLY_FILE
    return reopen_late_history(path, state, mapping=load_mapping(), due_from=due_from, offboarded=offboarded)
