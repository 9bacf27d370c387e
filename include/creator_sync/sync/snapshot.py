"""The directory snapshot: the last known InsightIQ users, profiles and accounts of the whole fleet.

Layout under the data root (creator_sync.storage: a file:// directory or an s3:// prefix):

    snapshot/<version>/users.parquet, profiles.parquet, accounts.parquet, meta.json
    snapshot/CURRENT.json      {"version": "<version>"}

A version is written in full first and CURRENT.json last (a local file by rename, an S3 object by one PUT),
so a reader that follows CURRENT.json only ever sees a complete version: a failure while writing leaves the
previous version in force, and the next successful write removes the half-written directory.

Concurrency: the snapshot is written only by the creator_sync transform task (after every fetch task of its
run has finished) and creator_sync has max_active_runs=1, so two runs never write it at once and no run reads
it while another writes; there is no lock. A DAG that writes it must keep to that (one run at a time with
creator_sync).

The rows are the fetch files' flattened records (creator_sync.files.write_records_parquet), so merged rows go
to the transform exactly as a full read's files would. Rows without their `id`, or without the user id the
transform joins on (creator_sync.pipeline.malformed), are not stored: the run that read them reports them.

A run's merge streams (`StreamMerge`, `SnapshotStore.merged`): the rows it re-read are indexed by id, the
stored version is read in record batches of BATCH_ROWS rows, each without the re-read ids, then the re-read
rows follow; `SnapshotStore.write` writes such a stream batch by batch and counts sizes and income accounts
as it goes. So the merge holds one batch, the run's re-read rows and their ids, never the stored directory.

meta.json keeps what the planner's Snapshot needs (sizes, income-synced account ids in a stable order,
contents per day) and when each part was last read in full. `run_id` and `base` (the version a run merged
onto) let a retried run start again from the same base (`base_for`), so a retry merges the same data.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from creator_sync import files, storage
from creator_sync.pipeline.malformed import ID_COLUMN as JOIN_COLUMN
from creator_sync.sync.insightiq_reads import INCOME_SYNCED
from creator_sync.sync.plan import Snapshot
from creator_sync.sync.run_context import run_dir_name

log = logging.getLogger(__name__)

PARTS = ("users", "profiles", "accounts")
KEY = "id"
POINTER = "CURRENT.json"
INCOME_STATUS = "data.income.status"
BATCH_ROWS = 10_000  # rows per record batch (and row group) of a streamed stored part
IDS_PER_CHUNK = 10_000  # income account ids JSON-encoded at a time into meta.json

Batches = pa.Table | Iterable[pa.Table]  # a part: one table, or a stream of tables under one schema


@dataclass(frozen=True)
class Meta:
    version: str
    run_id: str
    base: str | None
    written_at: str
    sizes: dict[str, int]
    income_accounts: tuple[str, ...]
    contents_per_day: int = 0
    full_read_at: dict[str, str | None] = field(default_factory=dict)  # part -> when last read in full

    def planner_snapshot(self) -> Snapshot:
        return Snapshot(
            users=self.sizes["users"],
            accounts=self.sizes["accounts"],
            profiles=self.sizes["profiles"],
            income_accounts=list(self.income_accounts),
            contents_per_day=self.contents_per_day,
        )

    @classmethod
    def from_json(cls, data: Mapping) -> Meta:
        return cls(**{**data, "income_accounts": tuple(data["income_accounts"])})


def _ids(table: pa.Table, column: str) -> pa.ChunkedArray | pa.Array:
    if column not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return table[column]


def storable(part: str, table: pa.Table) -> pa.Table:
    """The rows the snapshot keeps: those with their id and the user id the transform joins on."""
    keep = pc.is_valid(_ids(table, KEY))
    join = JOIN_COLUMN.get(part, KEY)
    keep = pc.and_(keep, pc.is_valid(_ids(table, join)))
    return table.filter(keep)


def last_per_id(table: pa.Table) -> pa.Table:
    """One row per id (the last read wins); rows without an id are kept as they are."""
    ids = _ids(table, KEY).to_pylist()
    last: dict[object, int] = {}
    for i, value in enumerate(ids):
        if value is not None:
            last[value] = i
    if len(last) == sum(v is not None for v in ids):
        return table
    keep = sorted(set(last.values()) | {i for i, v in enumerate(ids) if v is None})
    return table.take(pa.array(np.asarray(keep, dtype=np.int64)))


def merge(old: pa.Table | None, new: pa.Table) -> pa.Table:
    """`old`'s rows whose id `new` does not hold, then `new`'s rows: a re-read row replaces its old one."""
    new = last_per_id(new)
    if old is None or old.num_rows == 0:
        return new
    if new.num_rows == 0:
        return old
    fresh = pc.drop_null(_ids(new, KEY))
    kept = old.filter(pc.invert(pc.fill_null(pc.is_in(_ids(old, KEY), value_set=fresh), False)))
    return files.concat_tables([kept, new])


class StreamMerge:
    """`merge(old, new)` as a stream of tables under one schema: the tables `old_batches` yields (a stored
    part of `old_rows` rows under `old_schema`, read batch by batch) without the rows whose id `new` holds,
    then `new`'s last row per id. Each yielded table is equal, row for row, to its slice of `merge`'s result.
    With `replaced_columns`, `replaced` collects those columns (those of them old has) of the old rows a
    re-read row replaces, in old's order (the base rows of the re-read ids:
    creator_sync.sync.account_status.derive dates status changes from them)."""

    def __init__(
        self,
        old_schema: pa.Schema | None,
        old_rows: int,
        old_batches: Iterable[pa.Table],
        new: pa.Table,
        replaced_columns: Iterable[str] | None = None,
    ):
        self.new = last_per_id(new)
        self._replaced_columns = None if replaced_columns is None else tuple(replaced_columns)
        self.old_rows = old_rows
        self.old_schema = old_schema
        self._old = old_batches
        self.replaced: list[pa.Table] = []
        if not old_rows:
            self.schema = self.new.schema
        elif not self.new.num_rows:
            self.schema = old_schema
        else:
            self.schema = files.unify_schemas([old_schema, self.new.schema])
        self._fresh = pc.drop_null(_ids(self.new, KEY))

    def kept(self) -> Iterator[pa.Table]:
        """Old's rows that stay (none when old has no rows)."""
        if not self.old_rows:
            return
        for batch in self._old:
            if not self.new.num_rows:
                yield batch
                continue
            hit = pc.fill_null(pc.is_in(_ids(batch, KEY), value_set=self._fresh), False)
            if self._replaced_columns is not None and (replaced := batch.filter(hit)).num_rows:
                names = [c for c in self._replaced_columns if c in batch.column_names]
                self.replaced.append(replaced.select(names))
            kept = batch.filter(pc.invert(hit))
            if kept.num_rows:
                yield files.conform(kept, self.schema)

    def fresh(self) -> pa.Table | None:
        """The re-read rows, after `kept` (None when the merge is old as it was)."""
        if self.old_rows and not self.new.num_rows:
            return None
        return files.conform(self.new, self.schema) if self.old_rows else self.new

    def __iter__(self) -> Iterator[pa.Table]:
        yield from self.kept()
        if (fresh := self.fresh()) is not None:
            yield fresh


def _income_ids(accounts: pa.Table) -> pa.Array:
    """The distinct income-synced account ids of `accounts`, unsorted."""
    if INCOME_STATUS not in accounts.column_names or KEY not in accounts.column_names:
        return pa.array([], pa.string())
    # text whatever the column's type: a part whose statuses are all null reads back as a null or float column
    status = pc.cast(accounts[INCOME_STATUS], pa.string())
    synced = pc.is_in(status, value_set=pa.array(sorted(INCOME_SYNCED)))
    return pc.unique(pc.drop_null(accounts[KEY].filter(pc.fill_null(synced, False))).combine_chunks())


def _sorted_ids(ids: Iterable[pa.Array]) -> tuple[str, ...]:
    """The distinct values of `ids`, sorted (held as Arrow until the one Python tuple meta.json needs). By a
    sort and a comparison of neighbours, not a hash table (a fleet's ids hashed take several times their
    own size)."""
    ids = [i for i in ids if len(i)]
    if not ids:
        return ()
    values = pa.chunked_array(ids)
    values = values.take(pc.sort_indices(values))
    if len(ids) > 1 and len(values) > 1:  # one array: the distinct ids of one batch already
        distinct = np.ones(len(values), dtype=bool)
        distinct[1:] = pc.not_equal(values.slice(1), values.slice(0, len(values) - 1)).to_numpy(
            zero_copy_only=False
        )
        values = values.filter(pa.array(distinct))
    return tuple(values.to_pylist())


def income_accounts(accounts: pa.Table) -> tuple[str, ...]:
    """The income-synced account ids, sorted (the income sweep's stable order)."""
    return _sorted_ids([_income_ids(accounts)])


def _write_part(part: str, batches: Batches, targets: list) -> tuple[int, list[pa.Array]]:
    """Write the stream to targets[0] (its storable rows: the snapshot) and to targets[1:] (every row);
    returns the storable rows' count and, for accounts, their income account ids (per batch)."""
    stream = [batches] if isinstance(batches, pa.Table) else batches
    rows, income, writers = 0, [], []
    with ExitStack() as stack:
        for table in stream:
            table = table.replace_schema_metadata(None)
            if not writers:
                for target in targets:
                    fh = stack.enter_context(files.open_output(target, "wb"))
                    writers.append(stack.enter_context(pq.ParquetWriter(fh, table.schema)))
            kept = storable(part, table)
            rows += kept.num_rows
            if part == "accounts":
                income.append(_income_ids(kept))
            for writer, rows_out in zip(writers, [kept, *[table] * (len(writers) - 1)], strict=True):
                if rows_out.num_rows:  # row groups of at most BATCH_ROWS: the next merge reads one at a time
                    writer.write_table(rows_out, row_group_size=BATCH_ROWS)
        if not writers:  # no table at all: an empty part
            for target in targets:
                with files.open_output(target, "wb") as fh:
                    pq.write_table(pa.table({}), fh)
    return rows, income


class SnapshotStore:
    """Versions under `<root>/snapshot` (root: the data root, creator_sync.storage.data_root())."""

    def __init__(self, root: storage.RunPath | None = None):
        self.root = (storage.data_root() if root is None else root) / "snapshot"

    def current(self) -> Meta | None:
        """The version CURRENT.json names (None before the first write)."""
        pointer = self.root / POINTER
        if not files.exists(pointer):
            return None
        return self.meta(json.loads(files.read_text(pointer))["version"])

    def meta(self, version: str) -> Meta:
        return Meta.from_json(json.loads(files.read_text(self.root / version / "meta.json")))

    def base_for(self, run_id: str) -> Meta | None:
        """The snapshot a run starts from: the current one, or, when this run wrote the current one (a retried
        or cleared task), the one it was merged onto."""
        current = self.current()
        if current is None or current.run_id != run_id:
            return current
        return self.meta(current.base) if current.base else None

    def _path(self, meta: Meta, part: str):
        return self.root / meta.version / f"{part}.parquet"

    def read(self, meta: Meta, part: str, columns: Iterable[str] | None = None) -> pa.Table:
        """A stored part whole (`columns`: only those of them it has)."""
        with files.open_input(self._path(meta, part)) as fh:
            if columns is not None:
                names = set(pq.ParquetFile(fh).schema_arrow.names)
                columns = [c for c in columns if c in names]
                fh.seek(0)
            return pq.read_table(fh, columns=columns).replace_schema_metadata(None)

    def shape(self, meta: Meta, part: str) -> tuple[pa.Schema, int]:
        """A stored part's schema and row count (from the Parquet footer, no rows read)."""
        with files.open_input(self._path(meta, part)) as fh:
            parquet = pq.ParquetFile(fh)
            return parquet.schema_arrow.remove_metadata(), parquet.metadata.num_rows

    def batches(self, meta: Meta, part: str, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
        """A stored part, `batch_rows` rows at a time (the file stays open while the stream is read)."""
        with files.open_input(self._path(meta, part)) as fh:
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=batch_rows):
                yield pa.Table.from_batches([batch]).replace_schema_metadata(None)

    def merged(
        self,
        base: Meta | None,
        part: str,
        new: pa.Table,
        batch_rows: int = BATCH_ROWS,
        replaced_columns: Iterable[str] | None = None,
    ) -> StreamMerge:
        """`new` (a run's re-read rows) merged onto `base`'s part, as a stream (see StreamMerge)."""
        if base is None:
            return StreamMerge(None, 0, (), new, replaced_columns)
        schema, rows = self.shape(base, part)
        return StreamMerge(schema, rows, self.batches(base, part, batch_rows), new, replaced_columns)

    def write(
        self,
        run_id: str,
        base: Meta | None,
        tables: Mapping[str, Batches],
        *,
        now: datetime,
        full_read: Iterable[str] = (),
        contents_per_day: int = 0,
        copies: Mapping[str, object] | None = None,
    ) -> Meta:
        """Write a new version (the storable rows of `tables`, one per part: a table or a stream of tables),
        then point CURRENT.json at it; older versions except `base` are removed afterwards. `copies`: a path
        per part that gets every row of its stream too (the run's fetch files), written as it is read."""
        version = f"{now:%Y%m%dT%H%M%S}-{run_dir_name(run_id)}-{uuid.uuid4().hex[:8]}"
        directory = storage.ensure_dir(self.root / version)
        sizes, income = {}, []
        for part in PARTS:
            targets = [directory / f"{part}.parquet", *([copies[part]] if copies and part in copies else [])]
            sizes[part], found = _write_part(part, tables[part], targets)
            income += found
        full_read = set(full_read)
        previous = base.full_read_at if base else {}
        meta = Meta(
            version=version,
            run_id=run_id,
            base=base.version if base else None,
            written_at=now.isoformat(),
            sizes=sizes,
            income_accounts=_sorted_ids(income),
            contents_per_day=contents_per_day,
            full_read_at={p: now.isoformat() if p in full_read else previous.get(p) for p in PARTS},
        )
        self._write_meta(directory / "meta.json", meta)
        self._write_json(self.root / POINTER, {"version": version})  # last: the version is now in force
        self.prune(keep={version, meta.base})
        return meta

    @staticmethod
    def _write_meta(path, meta: Meta) -> None:
        """meta.json, its income account ids encoded IDS_PER_CHUNK at a time (a fleet's are millions of
        strings: one json.dumps of them all holds each encoded id and the whole text at once)."""
        ids = meta.income_accounts
        marker = '"income_accounts": []'
        head, tail = json.dumps(asdict(replace(meta, income_accounts=())), sort_keys=True).split(marker)
        with files.open_output(path, "wb") as fh:
            fh.write(f'{head}"income_accounts": ['.encode())
            for at in range(0, len(ids), IDS_PER_CHUNK):
                fh.write(
                    ((", " if at else "") + json.dumps(list(ids[at : at + IDS_PER_CHUNK]))[1:-1]).encode()
                )
            fh.write(f"]{tail}".encode())

    @staticmethod
    def _write_json(path, data: Mapping) -> None:
        with files.open_output(path, "wb") as fh:
            fh.write(json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))

    def versions(self) -> list[str]:
        """The version directories present (complete or not)."""
        if storage.is_local(self.root):
            root = storage.local_path(self.root)
            return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def prune(self, keep: set[str | None]) -> None:
        """Remove versions other than `keep` (older ones and half-written ones of failed writes). A failure
        here is logged, not raised: the new version is in force already."""
        for version in self.versions():
            if version not in keep:
                try:
                    storage.remove_tree(storage.child(self.root, version), parent=self.root)
                except Exception as exc:  # the next write tries again
                    log.warning("snapshot: could not remove old version %s: %s", version, exc)
