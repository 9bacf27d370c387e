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

meta.json keeps what the planner's Snapshot needs (sizes, income-synced account ids in a stable order,
contents per day) and when each part was last read in full. `run_id` and `base` (the version a run merged
onto) let a retried run start again from the same base (`base_for`), so a retry merges the same data.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
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


def income_accounts(accounts: pa.Table) -> tuple[str, ...]:
    """The income-synced account ids, sorted (the income sweep's stable order)."""
    if INCOME_STATUS not in accounts.column_names or KEY not in accounts.column_names:
        return ()
    synced = pc.is_in(accounts[INCOME_STATUS], value_set=pa.array(sorted(INCOME_SYNCED)))
    return tuple(sorted(set(pc.drop_null(accounts[KEY].filter(pc.fill_null(synced, False))).to_pylist())))


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

    def read(self, meta: Meta, part: str) -> pa.Table:
        with files.open_input(self.root / meta.version / f"{part}.parquet") as fh:
            return pq.read_table(fh).replace_schema_metadata(None)

    def write(
        self,
        run_id: str,
        base: Meta | None,
        tables: Mapping[str, pa.Table],
        *,
        now: datetime,
        full_read: Iterable[str] = (),
        contents_per_day: int = 0,
    ) -> Meta:
        """Write a new version (the storable rows of `tables`, one per part), then point CURRENT.json at it;
        older versions except `base` are removed afterwards."""
        version = f"{now:%Y%m%dT%H%M%S}-{run_dir_name(run_id)}-{uuid.uuid4().hex[:8]}"
        directory = storage.ensure_dir(self.root / version)
        kept = {part: storable(part, tables[part]) for part in PARTS}
        for part in PARTS:
            with files.open_output(directory / f"{part}.parquet") as fh:
                pq.write_table(kept[part], fh)
        full_read = set(full_read)
        previous = base.full_read_at if base else {}
        meta = Meta(
            version=version,
            run_id=run_id,
            base=base.version if base else None,
            written_at=now.isoformat(),
            sizes={part: kept[part].num_rows for part in PARTS},
            income_accounts=income_accounts(kept["accounts"]),
            contents_per_day=contents_per_day,
            full_read_at={p: now.isoformat() if p in full_read else previous.get(p) for p in PARTS},
        )
        self._write_json(directory / "meta.json", asdict(meta))
        self._write_json(self.root / POINTER, {"version": version})  # last: the version is now in force
        self.prune(keep={version, meta.base})
        return meta

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
