"""Read the fetch step's Parquet files (docs/development.md) in chunks, only the columns asked for."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from creator_sync import files

# income transactions of an incremental run's weekly sweep (creator_sync.sync.incremental_fetch): the
# transform keeps their events over the sweep's window, not only the run's
SWEEP_TRANSACTIONS = "transactions_sweep"
# contents of an incremental run's weekly per-account contents sweep (when InsightIQ's contents are read per
# account, creator_sync.sync.contents_read): kept over the same sweep window
SWEEP_CONTENTS = "contents_sweep"
# payouts of the same weekly income sweep (social payouts are read beside the transactions of an account)
SWEEP_PAYOUTS = "payouts_sweep"
RESOURCES = (
    "accounts",
    "profiles",
    "users",
    "contents",
    SWEEP_CONTENTS,
    "transactions",
    SWEEP_TRANSACTIONS,
    "payouts",
    SWEEP_PAYOUTS,
    "audience",
)
# sweep input -> its event source
SWEEPS = {SWEEP_TRANSACTIONS: "transactions", SWEEP_CONTENTS: "contents", SWEEP_PAYOUTS: "payouts"}
Inputs = Mapping[str, Iterable[str | Path]]


def discover_inputs(root: str | Path) -> dict[str, list[Path]]:
    """`root/<resource>/**/*.parquet` and `root/<resource>*.parquet` for every known resource (a file named
    after a longer resource, e.g. transactions_sweep*.parquet, belongs to that one)."""
    root = Path(root)
    found: dict[str, list[Path]] = {}
    for name in RESOURCES:
        paths = sorted((root / name).rglob("*.parquet")) if (root / name).is_dir() else []
        longer = [other for other in RESOURCES if other != name and other.startswith(name)]
        paths += sorted(p for p in root.glob(f"{name}*.parquet") if not p.name.startswith(tuple(longer)))
        found[name] = paths
    return found


def column(df: pd.DataFrame, name: str) -> pd.Series:
    """A column, or all-missing when the fetch did not produce it (column sets may vary)."""
    if name in df.columns:
        return df[name]
    return pd.Series(pd.NA, index=df.index, dtype="object")


def count_rows(paths: Iterable[str | Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def iter_chunks(paths: Iterable[str | Path], columns: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    """Stream a large resource (contents, transactions) as tables of at most `chunk_rows` rows.

    Only `columns` are read; the ones a file lacks come back as null columns.
    """
    for path in paths:
        pf = pq.ParquetFile(path)
        present = [c for c in columns if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=present):
            table = pa.Table.from_batches([batch])
            for name in columns:
                if name not in present:
                    table = table.append_column(name, pa.nulls(len(table), pa.string()))
            yield table.select(columns)


def unified_schema(paths: Iterable[str | Path], columns: Iterable[str] | None = None) -> pa.Schema:
    """The schema of a resource's non-empty files, restricted to `columns` (those no file has are left out),
    in the order `pd.concat` of the files would give, unified as the fetch's files are
    (`creator_sync.files.concat_tables`: a column missing or all-null in some files takes the others' type;
    differing types widen to float or string)."""
    schemas = []
    for path in paths:
        pf = pq.ParquetFile(path)
        if pf.metadata.num_rows:
            schemas.append(pf.schema_arrow.remove_metadata())
    if not schemas:
        return pa.schema([])
    unified = files.unify_schemas(schemas)
    wanted = None if columns is None else set(columns)
    return pa.schema([f for f in unified if wanted is None or f.name in wanted])


def iter_tables(
    paths: Iterable[str | Path], schema: pa.Schema, chunk_rows: int
) -> Iterator[tuple[Path, pa.Table]]:
    """(path, table) of at most `chunk_rows` rows per batch, cast to `schema` (columns a file lacks: null)."""
    for path in paths:
        pf = pq.ParquetFile(path)
        if not pf.metadata.num_rows:
            continue
        names = pf.schema_arrow.names
        present = [f.name for f in schema if f.name in names]
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=present):
            yield Path(path), files.conform(pa.Table.from_batches([batch]), schema)
