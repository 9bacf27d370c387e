"""A full read's directory step in bounded memory (the first run, `full` mode, manual runs; called by
creator_sync.sync.incremental_fetch's `complete_directory`): the run's fetched users, profiles and accounts
become the new snapshot version, one row per id (its last read: offset paging can read a record twice; rows
without an id are kept as they are), the accounts with the snapshot's rows of the accounts the read lacks
(`_Accounts`) and with account_status's DERIVED columns, which are also written into the run's accounts files.

Each part is read file after file in record batches of BATCH_ROWS rows, under the schema the files unify to
(creator_sync.files.unify_schemas, as `files.concat_tables` reads them), and the batches go to the new
version as they pass (`SnapshotStore.write` of a stream). Held per part: its id column (`scan`: which row
is the last read of its id, from a stable sort), and for accounts the snapshot's id, status and status_since
(what `account_status.derive` dates a change from) and the kept rows' derived columns with each fetched
row's position among them. Those are written into the fetched accounts files after the stream
(`account_status.annotate`, file by file, batch by batch): a row read twice gets its last read's columns,
and that read may lie in a later file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from creator_sync import files
from creator_sync.sync import account_status, snapshot
from creator_sync.sync.snapshot import KEY, PARTS, Meta, SnapshotStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """A part's fetched files: the schema they unify to, every row's id under it (None when no file has an id
    column) and, per row, whether the part keeps it (`keep`: the last row of its id, or a row without one)
    and the row of its id's last read (`last`; a row without an id: the first such row, the row
    `pc.index_in` finds for a null id)."""

    paths: tuple
    schema: pa.Schema
    ids: pa.ChunkedArray | None
    keep: np.ndarray
    last: np.ndarray

    def kept_rank(self) -> np.ndarray:
        """Per row: the position of its id's last read among the kept rows (in file order)."""
        return (np.cumsum(self.keep, dtype=np.int64) - 1)[self.last]


def _schema(path) -> pa.Schema:
    with files.open_input(path) as fh:
        return pq.ParquetFile(fh).schema_arrow.remove_metadata()


def _id_column(path, field: pa.Field) -> pa.ChunkedArray:
    """The id column of one file (only that column is read) under the unified type `field`."""
    with files.open_input(path) as fh:
        parquet = pq.ParquetFile(fh)
        if KEY not in parquet.schema_arrow.names:
            return pa.chunked_array([pa.nulls(parquet.metadata.num_rows, field.type)])
        table = parquet.read(columns=[KEY]).replace_schema_metadata(None)
    return files.conform(table, pa.schema([field]))[KEY]


def last_reads(ids: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(keep, last) of `Fetched` for these ids. By a stable sort, not a hash table (a fleet's ids hashed
    take several times their own size): equal ids are neighbours in id order, in row order among them."""
    n = len(ids)
    order = pc.sort_indices(ids).to_numpy()  # stable; nulls last
    ordered = ids.take(order)
    nulls = pc.is_null(ordered).to_numpy(zero_copy_only=False)
    ends = np.ones(n, dtype=bool)  # the last position of each run of one id in `ordered`
    if n > 1:
        differs = pc.fill_null(pc.not_equal(ordered.slice(1), ordered.slice(0, n - 1)), True)
        ends[:-1] = differs.to_numpy(zero_copy_only=False)
    del ordered
    ends |= nulls
    keep = np.zeros(n, dtype=bool)
    keep[order[ends]] = True
    run_ends = np.flatnonzero(ends)
    last = np.empty(n, dtype=np.int64)
    last[order] = order[run_ends[np.searchsorted(run_ends, np.arange(n))]]
    if nulls.any():
        last[order[nulls]] = order[nulls].min()
    return keep, last


def scan(paths) -> Fetched:
    """The part's files (`paths`): their unified schema and the rows kept (only the id columns are read)."""
    paths = tuple(paths)
    schema = files.unify_schemas([_schema(p) for p in paths])
    if KEY not in schema.names:
        rows = 0
        for path in paths:
            with files.open_input(path) as fh:
                rows += pq.ParquetFile(fh).metadata.num_rows
        return Fetched(paths, schema, None, np.ones(rows, dtype=bool), np.arange(rows, dtype=np.int64))
    field = schema.field(KEY)
    ids = pa.chunked_array([c for p in paths for c in _id_column(p, field).chunks], field.type)
    return Fetched(paths, schema, ids, *last_reads(ids))


def kept_batches(fetched: Fetched, schema: pa.Schema) -> Iterator[tuple[int, np.ndarray, pa.Table]]:
    """(the batch's first row among the part's rows, its rows' keep flags, its kept rows under `schema`),
    batch by batch in file order (the order `snapshot.last_per_id` keeps)."""
    at = 0
    for path in fetched.paths:
        with files.open_input(path) as fh:
            parquet = pq.ParquetFile(fh)
            if not parquet.metadata.num_rows:
                continue
            for batch in parquet.iter_batches(batch_size=snapshot.BATCH_ROWS):
                keep = fetched.keep[at : at + batch.num_rows]
                table = pa.Table.from_batches([batch]).replace_schema_metadata(None).filter(pa.array(keep))
                yield at, keep, files.conform(table, schema)
                at += batch.num_rows


def _part(paths) -> Iterator[pa.Table]:
    """A users or profiles part: its kept rows under the unified schema (an empty table first: it carries the
    schema when no row is kept)."""
    fetched = scan(paths)
    yield fetched.schema.empty_table()
    for _, _, table in kept_batches(fetched, fetched.schema):
        yield table


def _text_ids(values) -> pa.ChunkedArray:
    return pc.cast(values, pa.string())


def _queue_missing(before: pa.Table) -> None:
    """Queue for a targeted run the accounts of `before` (the snapshot's rows the read lacks) that are not
    NOT_CONNECTED already (an account a targeted run found deleted has nothing left to clear): its GET tells
    a deleted account (404: disconnected, account_status.vanished) from one the paging skipped."""
    ask = pc.cast(before[KEY], pa.string())
    if account_status.STATUS in before.column_names:
        status = pc.cast(before[account_status.STATUS], pa.string())
        ask = ask.filter(pc.fill_null(pc.not_equal(status, account_status.NOT_CONNECTED), True))
    if not len(ask):
        return
    from creator_sync.store.webhooks import WebhookStore, make_engine

    WebhookStore(make_engine()).queue_accounts([str(i) for i in ask.to_pylist()])
    log.warning("%d snapshot account(s) missing from the full read: queued for a targeted run", len(ask))


def _without_derived(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in account_status.DERIVED])


class _Accounts:
    """The accounts part: the fetched rows kept, then the snapshot's rows of the accounts the read lacks (kept
    as they were, in the snapshot only: the run's transform reads its fetched files; and queued,
    `_queue_missing`: a missing account is never cleared on the list's word alone), each batch with the
    DERIVED columns (`account_status.derive`, a fetched row against its snapshot row, a kept row against
    itself). `lookup` collects the kept fetched rows' DERIVED columns, in order, and `rows` each fetched row's
    position among them (its id's last read), for `annotate`."""

    def __init__(self, store: SnapshotStore, base: Meta | None, paths, window: tuple[datetime, datetime]):
        self.store, self.base, self.paths, self.window = store, base, tuple(paths), window
        self.lookup: list[pa.Table] = []
        self.rows: np.ndarray | None = None  # per fetched row: its row of `lookup` (None: no id column)

    def _before(self) -> pa.Table | None:
        """The snapshot's id, status and status_since (None: no snapshot)."""
        if self.base is None:
            return None
        return self.store.read(self.base, "accounts", columns=account_status.BASE_COLUMNS)

    @staticmethod
    def _missing(fetched: Fetched, before: pa.Table | None) -> pa.ChunkedArray | None:
        """Per snapshot row: its account is missing from the read (None: no snapshot row has an id)."""
        if before is None or KEY not in before.column_names or not before.num_rows:
            return None
        read = pa.array([], pa.string()) if fetched.ids is None else pc.drop_null(_text_ids(fetched.ids))
        ids = _text_ids(before[KEY])
        return pc.and_(pc.is_valid(ids), pc.invert(pc.fill_null(pc.is_in(ids, value_set=read), False)))

    def _derive(self, base: pa.Table | None, table: pa.Table, snapshot_rows=None, fetched=False) -> pa.Table:
        out = account_status.derive(base, table, self.window, snapshot_rows=snapshot_rows)
        if fetched:  # the fetched rows: `annotate` writes their columns
            self.lookup.append(out.select(list(account_status.DERIVED)))
        return out

    def __iter__(self) -> Iterator[pa.Table]:
        fetched, before = scan(self.paths), self._before()
        missing = self._missing(fetched, before)
        missing = None if missing is None or not pc.any(missing).as_py() else missing
        schema = fetched.schema
        if missing is not None:
            _queue_missing(before.filter(missing))
            stored, _ = self.store.shape(self.base, "accounts")
            schema = files.unify_schemas([schema, _without_derived(stored)])
        rows = 0 if before is None else before.num_rows
        at = None
        if rows and fetched.ids is not None and KEY in before.column_names:
            at = pc.index_in(_text_ids(fetched.ids), value_set=_text_ids(before[KEY]))
        if fetched.ids is not None:
            self.rows = fetched.kept_rank()
        yield self._derive(None, schema.empty_table(), fetched=True)  # carries the schema when no row is kept
        for offset, keep, table in kept_batches(fetched, schema):
            base = before
            if before is not None:  # the snapshot rows of the batch's ids (derive's `base`)
                mine = at.slice(offset, len(keep)).filter(pa.array(keep)) if at is not None else pa.array([])
                base = before.take(pc.drop_null(mine).cast(pa.int64()))
            yield self._derive(base, table, rows, fetched=True)
        if missing is not None:
            yield from self._kept(_text_ids(before[KEY]).filter(missing), schema)

    def _kept(self, ids: pa.ChunkedArray, schema: pa.Schema) -> Iterator[pa.Table]:
        """The snapshot's rows of the missing accounts `ids`, batch by batch, without their DERIVED columns
        (derived again: each row's snapshot row is itself, the snapshot holds one row per id)."""
        for batch in self.store.batches(self.base, "accounts"):
            rows = batch.filter(pc.fill_null(pc.is_in(_text_ids(batch[KEY]), value_set=ids), False))
            if rows.num_rows:
                plain = rows.drop_columns([c for c in account_status.DERIVED if c in rows.column_names])
                yield self._derive(rows, files.conform(plain, schema))


def write(
    store: SnapshotStore,
    run_id: str,
    base: Meta | None,
    paths: Mapping[str, list],
    window: tuple[datetime, datetime],
    *,
    now: datetime,
    contents_per_day: int,
) -> Meta:
    """The run's fetched parts (`paths[part]`: its Parquet files, in order) stored as the new version (read in
    full: every part), then the DERIVED columns written into the fetched accounts files."""
    accounts = _Accounts(store, base, paths["accounts"], window)
    parts = {"users": _part(paths["users"]), "profiles": _part(paths["profiles"]), "accounts": accounts}
    meta = store.write(run_id, base, parts, now=now, full_read=PARTS, contents_per_day=contents_per_day)
    if accounts.rows is not None:  # the fetched accounts have ids
        derived = pa.concat_tables(accounts.lookup)
        accounts.lookup.clear()
        rows = accounts.rows
        account_status.annotate(paths["accounts"], derived.combine_chunks(), snapshot.BATCH_ROWS, rows=rows)
    return meta
