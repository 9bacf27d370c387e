"""Files: records -> Parquet (docs/development.md, "Fetched files"), JSON Lines; local or object storage.

``write_records_parquet`` flattens with ``pandas.json_normalize(sep=".")`` and stores list/dict leaves as
JSON strings. It works in chunks (memory stays flat): each chunk is written to a local part file, then
the parts are streamed into the target with one schema unified across all chunks (missing columns are
null; a column whose type differs between chunks is widened to float or, failing that, to string).
pandas and pyarrow are imported by the functions that use them: the upsert and the report read and write
JSON Lines only, and their task processes need not load either.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_CHUNK_ROWS = 10_000
PathLike = str | os.PathLike


def _is_url(path: Any) -> bool:
    return isinstance(path, str) and "://" in path


def _object_path(path: Any):
    """An ``ObjectStoragePath`` for URLs / ObjectStoragePath objects, else ``None``."""
    try:
        from airflow.sdk import ObjectStoragePath
    except ImportError:  # pragma: no cover
        return None
    if isinstance(path, ObjectStoragePath):
        return path
    if _is_url(path):
        return ObjectStoragePath(path)
    return None


@contextlib.contextmanager
def open_output(path: Any, mode: str = "wb") -> Iterator[IO]:
    """Open ``path`` for writing: local paths atomically (tmp + rename), URLs via ObjectStoragePath."""
    obj = _object_path(path)
    if obj is not None:
        if obj.protocol in ("file", "local", ""):  # object storage has no directories (and s3fs's mkdir
            obj.parent.mkdir(parents=True, exist_ok=True)  # would create a missing bucket)
        with obj.open(mode) as fh:
            yield fh
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def open_input(path: Any, mode: str = "rb") -> Iterator[IO]:
    obj = _object_path(path)
    if obj is not None:
        with obj.open(mode) as fh:
            yield fh
        return
    with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
        yield fh


def read_text(path: Any) -> str:
    """The UTF-8 text of a local path or object-storage URL."""
    with open_input(path, "rb") as fh:
        return fh.read().decode("utf-8")


def exists(path: Any) -> bool:
    obj = _object_path(path)
    return obj.exists() if obj is not None else Path(path).exists()


def iter_jsonl(path: Any) -> Iterator[tuple[int, Any, str | None]]:
    """``(line_number, value, error)`` for each non-blank line; ``error`` set if the line is not JSON."""
    with open_input(path, "rb") as raw:
        for number, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8"), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line), None
            except ValueError as exc:
                yield number, line.rstrip("\n"), f"line {number} is not valid JSON: {exc}"


class JsonlWriter:
    """Append JSON objects, one per line, to a local path or object-storage URL."""

    def __init__(self, path: Any) -> None:
        self._cm = open_output(path, "wb")
        self._fh = self._cm.__enter__()
        self.count = 0

    def write(self, record: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False, default=str).encode("utf-8") + b"\n")
        self.count += 1

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._cm.__exit__(exc_type, exc, tb)


def _jsonify(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def flatten_records(records: list[Mapping[str, Any]]) -> pa.Table:
    """One chunk -> Arrow table: json_normalize(sep="."), list/dict leaves as JSON text."""
    import pandas as pd
    import pyarrow as pa

    frame = pd.json_normalize(records, sep=".")
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column].map(_jsonify)
            kinds = {type(v) for v in values if v is not None and not (isinstance(v, float) and pd.isna(v))}
            if len(kinds) > 1 and not kinds <= {int, float}:
                values = values.map(lambda v: None if v is None else str(v))
            frame[column] = values
    return pa.Table.from_pandas(frame, preserve_index=False)


def _unify(schemas: list[pa.Schema]) -> pa.Schema:
    import pyarrow as pa

    order: list[str] = []
    types: dict[str, set[pa.DataType]] = {}
    for schema in schemas:
        for f in schema:
            if f.name not in types:
                order.append(f.name)
                types[f.name] = set()
            if not pa.types.is_null(f.type):
                types[f.name].add(f.type)
    fields = []
    for name in order:
        kinds = types[name]
        if not kinds:
            t = pa.string()
        elif len(kinds) == 1:
            t = next(iter(kinds))
        elif all(pa.types.is_integer(k) or pa.types.is_floating(k) for k in kinds):
            t = pa.float64()
        else:
            t = pa.string()
        fields.append(pa.field(name, t))
    return pa.schema(fields)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    columns = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            if col.type != f.type:
                col = col.cast(f.type, safe=False) if not pa.types.is_string(f.type) else _to_string(col)
            columns.append(col)
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


unify_schemas, conform = _unify, _conform  # for readers of the same files (creator_sync.pipeline.sources)


def _to_string(col: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa

    try:
        return col.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.chunked_array(
            [pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())]
        )


def write_records_parquet(
    records: Iterable[Mapping[str, Any]],
    path: Any,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> int:
    """Write ``records`` (any iterable, consumed once) to one Parquet file at ``path``; return the count.

    ``path``: local path, ``file://`` / ``s3://`` ... URL, or ``airflow.sdk.ObjectStoragePath``.
    """
    import pyarrow.parquet as pq

    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    workdir = Path(tempfile.mkdtemp(prefix="creator-sync-parquet-"))
    try:
        parts: list[Path] = []
        schemas: list[pa.Schema] = []
        count = 0
        chunk: list[Mapping[str, Any]] = []

        def spill() -> None:
            table = flatten_records(chunk)
            part = workdir / f"part-{len(parts):05d}.parquet"
            pq.write_table(table, part)
            parts.append(part)
            schemas.append(table.schema)

        for record in records:
            chunk.append(record)
            count += 1
            if len(chunk) >= chunk_rows:
                spill()
                chunk = []
        if chunk:
            spill()
            chunk = []
        schema = _unify(schemas).remove_metadata()
        with open_output(path, "wb") as fh, pq.ParquetWriter(fh, schema) as writer:
            for part in parts:
                writer.write_table(_conform(pq.read_table(part).replace_schema_metadata(None), schema))
                part.unlink()
        return count
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def concat_tables(tables: Iterable[pa.Table]) -> pa.Table:
    """Tables of flattened records (as ``write_records_parquet`` writes them) as one, under the same schema
    unification: missing columns are null, a column whose type differs is widened to float or string."""
    import pyarrow as pa

    tables = [t.replace_schema_metadata(None) for t in tables]
    if not tables:
        return pa.table({})
    schema = _unify([t.schema for t in tables])
    return pa.concat_tables([_conform(t, schema) for t in tables])
