"""When each account's connection status began: the `status_since` columns the account events are read from
(`account_connected`, `account_disconnected`, `session_expired` in insider_mapping.yaml).

InsightIQ documents no status-change time: an account carries `status` (CONNECTED, NOT_CONNECTED,
SESSION_EXPIRED), `created_at` and `updated_at`, and the docs do not say whether `updated_at` moves only when
the status changes or on every sync (the sandbox moves it on every sync). Keying an event on `updated_at`
would send one event per sync under the second reading. So the status change is found by comparing each
account with the directory snapshot the run starts from (creator_sync.sync.snapshot), and its moment is
fixed once, when the change is first seen, and kept in the snapshot from then on:

- status as in the snapshot (and a `status_since` there): the snapshot's `status_since`, unchanged;
- status changed, or an account the snapshot lacks (a new connection): the account's `updated_at` (for a
  new CONNECTED account its `created_at`: the connection created it); under either reading of `updated_at`
  it is a moment at which the new status held. It is clamped into the run's event window [events_from,
  end), so that the run that sees the change sends it: a change found late (e.g. by the daily directory
  sweep) is dated at the window's start, one after the window's end (e.g. in a webhook-triggered run,
  which covers the last complete hour) at its last second;
- no snapshot at all (the first full read) or a snapshot without `status_since`: `updated_at`
  (`created_at` for CONNECTED) as it is, not clamped: the fleet's existing connections are not news.

The columns are UTC timestamps. `status_since.<status>` (`status_since.connected`,
`status_since.not_connected`, `status_since.session_expired`) holds `status_since` on the rows with that
status and is empty elsewhere:
each account event reads its own column, and a row without one is not that event. The ledger key holds the
timestamp, so a reconnect after a disconnect (a new `status_since`) is a new `account_connected`, and the same
change seen again (a retried task, a re-run interval) is the same event.

A disconnect and a reconnect between two reads of the account leave the status as it was: no event.

The webhooks' `last_updated_time` (ACCOUNTS.CONNECTED, SESSION.EXPIRED, ...) is not
used: the receiver hands the run it starts only account ids (creator_sync.webhooks.trigger), and that run
reads the account right after, so its `updated_at` lies within minutes of the webhook.

An account deleted at InsightIQ (`GET /v1/accounts/{id}` answers 404 in a targeted run) is a
disconnect too (`vanished`): its snapshot row, with status NOT_CONNECTED, joins the run's reads, so the run
sends `account_disconnected` (dated like any status change) and clears the platform's attributes; the row
stays in the snapshot as NOT_CONNECTED. A full read does not conclude that from an account missing in its
list (offset paging can skip a record while the list changes): it queues such accounts for a targeted run
(`missing_from`), whose GET decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from creator_sync import files
from creator_sync.pipeline.events import parse_timestamps

KEY = "id"
STATUS = "status"
SINCE = "status_since"
CONNECTED = "CONNECTED"
NOT_CONNECTED = "NOT_CONNECTED"
STATUSES = ("CONNECTED", "NOT_CONNECTED", "SESSION_EXPIRED")  # InsightIQ's account statuses


def since_column(status: str) -> str:
    """`status_since.connected` for CONNECTED: the column an account event reads its timestamp from."""
    return f"{SINCE}.{status.lower()}"


DERIVED = (SINCE, *(since_column(s) for s in STATUSES))
BASE_COLUMNS = (KEY, STATUS, SINCE)  # what `derive` reads of the snapshot's rows
SINCE_DTYPE = "datetime64[us, UTC]"
ANNOTATE_BATCH_ROWS = 10_000  # rows of an accounts file read and rewritten at a time


def _text(table: pa.Table, name: str) -> pd.Series:
    if name not in table.column_names:
        return pd.Series([None] * table.num_rows, dtype="object")
    return pd.Series(pc.cast(table[name], pa.string()).to_pandas(), dtype="object")


def _time(table: pa.Table, name: str) -> pd.Series:
    """A column as UTC datetimes (ISO text or Arrow timestamps; naive = UTC; missing or junk: NaT)."""
    if name not in table.column_names:
        return pd.Series(pd.NaT, index=pd.RangeIndex(table.num_rows), dtype=SINCE_DTYPE)
    return parse_timestamps(table[name]).reset_index(drop=True)


def derive(
    base: pa.Table | None,
    accounts: pa.Table,
    window: tuple[datetime, datetime],
    *,
    snapshot_rows: int | None = None,
) -> pa.Table:
    """`accounts` with the DERIVED columns (UTC timestamps), from the snapshot's `base` accounts (None: no
    snapshot) and the run's event window [events_from, end) (see the module doc). A streaming merge passes
    as `base` only the snapshot rows of `accounts`' ids and the snapshot's row count as `snapshot_rows`
    (whether there is a snapshot at all decides how an account it lacks is dated)."""
    if snapshot_rows is None:
        snapshot_rows = 0 if base is None else base.num_rows
    accounts = accounts.drop_columns([c for c in DERIVED if c in accounts.column_names])
    status = _text(accounts, STATUS)
    created, updated = _time(accounts, "created_at"), _time(accounts, "updated_at")
    connected = (status == CONNECTED).to_numpy()
    seen = created.where(connected, updated).fillna(updated)
    since = seen
    if base is not None and snapshot_rows:
        # each account's row in the snapshot (null: the snapshot lacks it); the snapshot holds one row per id
        at = pc.index_in(pc.cast(accounts[KEY], pa.string()), value_set=pc.cast(base[KEY], pa.string()))
        previous = base.select([c for c in (STATUS, SINCE) if c in base.column_names]).take(at)
        known = np.asarray(pc.is_valid(at), dtype=bool)
        unchanged = known & (_text(previous, STATUS) == status).to_numpy()
        prev_since = _time(previous, SINCE)
        start, end = pd.Timestamp(window[0]), pd.Timestamp(window[1]) - timedelta(seconds=1)
        changed = updated.where(known, seen)  # a known account's change: updated_at; a new one: as `seen`
        observed = changed.fillna(start).clip(lower=start, upper=end)
        legacy = unchanged & prev_since.isna().to_numpy()  # a snapshot from before these columns
        since = observed.where(~unchanged, prev_since).where(~legacy, seen)
    accounts = accounts.append_column(SINCE, _arrow(since))
    for value in STATUSES:
        accounts = accounts.append_column(
            since_column(value), _arrow(since.where((status == value).to_numpy()))
        )
    return accounts


def _arrow(values: pd.Series) -> pa.Array:
    return pa.array(values.astype(SINCE_DTYPE), pa.timestamp("us", tz="UTC"), from_pandas=True)


def annotate(
    paths: Iterable, derived: pa.Table, batch_rows: int = ANNOTATE_BATCH_ROWS, rows: np.ndarray | None = None
) -> int:
    """Add the DERIVED columns of `derived` (by account id) to each accounts file of `paths` (the run's fetch
    files the transform reads); returns the files rewritten. Rewriting a file again gives the same file. A
    file is read and rewritten `batch_rows` rows at a time. `rows`: instead of looking the ids up (a file's
    id column read first, alone), the row of `derived` of every row of the files, file after file (those of
    a file without an id column too, left as it is)."""
    if rows is None and KEY not in derived.column_names:
        return 0
    values = derived.select(list(DERIVED))
    if rows is not None:
        offsets = np.cumsum([0, *(_row_count(p) for p in paths)])
        return sum(
            _annotate_file(p, values, lambda _, a=a, b=b: pa.array(rows[a:b]), batch_rows)
            for p, a, b in zip(paths, offsets[:-1], offsets[1:], strict=True)
        )
    ids = pc.cast(derived[KEY], pa.string())

    def lookup(parquet: pq.ParquetFile) -> pa.Array:
        return pc.index_in(pc.cast(parquet.read(columns=[KEY])[KEY], pa.string()), value_set=ids)

    return sum(_annotate_file(path, values, lookup, batch_rows) for path in paths)


def _row_count(path) -> int:
    with files.open_input(path) as fh:
        return pq.ParquetFile(fh).metadata.num_rows


def _annotated(table: pa.Table, values: pa.Table, at) -> pa.Table:
    table = table.drop_columns([c for c in DERIVED if c in table.column_names])
    for name in DERIVED:
        table = table.append_column(name, pc.take(values[name], at))
    return table


def _annotate_file(path, values: pa.Table, locate, batch_rows: int) -> int:
    """One file of `annotate` (0: it has no id column, left as it is); `locate(file)`: the row of `values`
    of each of its rows."""
    with files.open_input(path) as fh:
        parquet = pq.ParquetFile(fh)
        if KEY not in parquet.schema_arrow.names:
            return 0
        at = locate(parquet)
        empty = parquet.schema_arrow.remove_metadata().empty_table()
        tables = (pa.Table.from_batches([b]) for b in parquet.iter_batches(batch_size=batch_rows))
        with files.open_output(path) as out:
            writer, offset = None, 0
            for table in tables if parquet.metadata.num_rows else [empty]:
                n = table.num_rows
                table = _annotated(table.replace_schema_metadata(None), values, at.slice(offset, n))
                offset += n
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
            writer.close()
    return 1


def _ids(table: pa.Table | None) -> pa.Array:
    if table is None or KEY not in table.column_names:
        return pa.array([], pa.string())
    return pc.cast(table[KEY], pa.string()).combine_chunks()


def missing_from(base: pa.Table | None, read: pa.Table) -> list[str]:
    """The ids of the snapshot's accounts that `read` (a full read of the accounts list) lacks, sorted."""
    ids = _ids(base)
    if not len(ids):
        return []
    absent = pc.invert(pc.fill_null(pc.is_in(ids, value_set=_ids(read)), False))
    return sorted({str(v) for v in pc.drop_null(ids.filter(absent)).to_pylist()})


def vanished(base: pa.Table | None, read: pa.Table, asked: Iterable[str]) -> pa.Table | None:
    """The snapshot's rows of the accounts a targeted run asked for (`asked`) that InsightIQ does not have
    (not in `read`: their GET answered 404), with status NOT_CONNECTED and without the DERIVED columns
    (`derive` dates the change); None when there are none (or the snapshot lacks them: nothing to clear)."""
    ids = _ids(base)
    wanted = pa.array(sorted(set(asked)), pa.string())
    if not len(ids) or not len(wanted):
        return None
    gone = pc.and_(
        pc.fill_null(pc.is_in(ids, value_set=wanted), False),
        pc.invert(pc.fill_null(pc.is_in(ids, value_set=_ids(read)), False)),
    )
    rows = base.filter(gone)
    if not rows.num_rows:
        return None
    rows = rows.drop_columns([c for c in DERIVED if c in rows.column_names])
    status = pa.array([NOT_CONNECTED] * rows.num_rows, pa.string())
    if STATUS in rows.column_names:
        return rows.set_column(rows.column_names.index(STATUS), STATUS, status)
    return rows.append_column(STATUS, status)
