"""Purge one creator's rows from the run files still on disk (``<data dir>/runs/*``).

Parquet files (fetch output, ``user_hashes.parquet``) lose the rows whose user columns name the creator;
JSON Lines files (``users.jsonl``, ``rejected.jsonl``) lose the lines whose ``identifiers.uuid`` or
``user_key`` is the creator. Each changed file is rewritten to a temporary file and renamed over the old one,
so a crash leaves either the old or the new file, never a half-written one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Columns that hold the InsightIQ user id (flattened names, docs/development.md); `id` only in users files.
USER_COLUMNS = ("user.id", "uuid", "user_id", "user_key")


def run_files(data_dir: Path) -> Iterator[Path]:
    runs = data_dir / "runs"
    if not runs.is_dir():
        return
    for path in sorted(runs.rglob("*")):
        if path.is_file() and path.suffix in (".parquet", ".jsonl"):
            yield path


def _parquet_mask(table: pa.Table, path: Path, user_id: str) -> pa.ChunkedArray | None:
    columns = [c for c in USER_COLUMNS if c in table.column_names]
    if path.stem.startswith("users") and "id" in table.column_names:
        columns.append("id")
    mask = None
    for name in columns:
        hit = pc.fill_null(pc.equal(pc.cast(table[name], pa.string()), user_id), False)
        mask = hit if mask is None else pc.or_(mask, hit)
    return mask


def _purge_parquet(path: Path, user_id: str, dry_run: bool) -> int:
    table = pq.read_table(path)
    mask = _parquet_mask(table, path, user_id)
    if mask is None:
        return 0
    removed = int(pc.sum(mask).as_py() or 0)
    if removed and not dry_run:
        tmp = path.with_name(path.name + ".purge-tmp")
        pq.write_table(table.filter(pc.invert(mask)), tmp)
        os.replace(tmp, path)
    return removed


def _line_is_user(line: str, user_id: str) -> bool:
    if user_id not in line:
        return False
    try:
        value = json.loads(line)
    except ValueError:
        return False
    if not isinstance(value, dict):
        return False
    ids = value.get("identifiers") or (value.get("user") or {}).get("identifiers") or {}
    return value.get("user_key") == user_id or (isinstance(ids, dict) and ids.get("uuid") == user_id)


def _purge_jsonl(path: Path, user_id: str, dry_run: bool) -> int:
    with path.open(encoding="utf-8") as fh:
        if not any(user_id in line for line in fh):
            return 0
    removed = 0
    tmp = path.with_name(path.name + ".purge-tmp")
    with path.open(encoding="utf-8") as src, open(os.devnull, "w") if dry_run else tmp.open("w") as out:
        for line in src:
            if _line_is_user(line, user_id):
                removed += 1
            else:
                out.write(line)
    if removed and not dry_run:
        os.replace(tmp, path)
    else:
        tmp.unlink(missing_ok=True)
    return removed


def purge_run_files(data_dir: Path, user_id: str, *, dry_run: bool = False) -> dict[str, int]:
    """Rows removed per file kind: ``{"parquet_rows", "jsonl_lines", "files"}``."""
    counts = {"parquet_rows": 0, "jsonl_lines": 0, "files": 0}
    for path in run_files(data_dir):
        if path.suffix == ".parquet":
            n = _purge_parquet(path, user_id, dry_run)
            counts["parquet_rows"] += n
        else:
            n = _purge_jsonl(path, user_id, dry_run)
            counts["jsonl_lines"] += n
        counts["files"] += bool(n)
    return counts
