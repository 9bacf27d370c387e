"""The backfill range cache: the hourly runs of a backfill read InsightIQ once per chunk of days, not once
per hour.

`airflow backfill create` over D days makes 24*D hourly runs. Read like scheduled runs, each would read the
whole directory (users, profiles, accounts) and one transactions list per income account. Here the first
backfill run that finds no usable entry reads a CHUNK instead - the directory, one date-filtered contents
list over the chunk's days, each income account's transactions over the chunk's days - through the full
read (creator_sync.sync.full_fetch, handed in by the engine, creator_sync.sync.fetch), into the data
directory (file:// or s3://, creator_sync.storage).
Every later backfill run whose days lie inside the chunk copies its files from there without a request:
event files (contents, transactions) keep only the rows dated on the run's days (undated rows are kept, the
transform decides about them); the transform then keeps the run's event window [events_from, end) exactly
as for a fetched run, so skip_hook and the per-run event window are unchanged.

Where the chunk comes from: the Airflow 3.3 Task SDK gives a task its dag_run's run_type, data interval and
conf, but neither the backfill's id nor its from/to dates (airflow.sdk.api.datamodels._generated.DagRun has
no backfill field, and a backfill run_id is `backfill__<run_after>`). So a chunk starts at the first day of
the run that found no entry and spans CREATOR_SYNC_BACKFILL_CHUNK_DAYS days (default 31), capped at today
(UTC). When the run's days end just before a fresh entry, the backfill runs backwards (`--run-backwards`):
the chunk then ends at the run's last day and spans the days before it.

An entry is used by a run only when (a) its marker `complete.json` exists - it is written last, so a partial
or failed write is never used, (b) its days cover the run's days (look-back included), (c) its read started
after the run's interval ended - it holds what InsightIQ had for those hours, and (d) it is younger than
CREATOR_SYNC_BACKFILL_CACHE_HOURS (default 12): a later backfill over the same days reads InsightIQ again.
Entries older than that are deleted by the next write of the same part.

Each fetch task caches its own part (`directory`: users and profiles; `contents`; `accounts-<i>-of-<n>`:
a shard's accounts and their income transactions), so the parallel fetch tasks of a run never wait on each
other. Backfill runs may run side by side: the DAG's max_active_runs=1 holds scheduled and manual runs, but
Airflow 3.3 starts a backfill's runs under the backfill's own max_active_runs (`airflow backfill create
--max-active-runs`, default 10). So a read in progress is announced by a claim file with a heartbeat; a task
of another run that needs the same days waits for its marker instead of reading the same chunk again, and
reads itself only when the claim's heartbeat stops (the reading task died). Entry directories are unique, so
two writers never share an entry. With `--max-active-runs 1` the runs execute one at a time and nobody waits.

Only full-scope backfill runs use the cache: targeted runs (`account_ids`) and every other run type read
InsightIQ as before. CREATOR_SYNC_BACKFILL_CHUNK_DAYS=0 switches the cache off.
"""

from __future__ import annotations

import copy
import json
import secrets
import shutil
import threading
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from creator_sync import files, settings, storage
from creator_sync.http.client import ClientStats
from creator_sync.pipeline.events import parse_timestamps
from creator_sync.pipeline.mapping import load_mapping
from creator_sync.sync.insightiq_reads import day_range
from creator_sync.sync.plan import DIRECTORY as DIRECTORY_PARTS
from creator_sync.sync.run_context import SyncRun

CHUNK_DAYS_ENV = "CREATOR_SYNC_BACKFILL_CHUNK_DAYS"
CACHE_HOURS_ENV = "CREATOR_SYNC_BACKFILL_CACHE_HOURS"
DEFAULT_CACHE_HOURS = settings.default("backfill_cache_hours")
CACHE_DIR = "backfill-cache"  # under the data directory, beside runs/
MARKER = "complete.json"
CLAIM = "claim.json"  # {"run_id", "beat"}: a read in progress, its heartbeat rewritten every BEAT_S
BEAT_S = 30.0
CLAIM_STALE_S = 120.0  # a claim not beaten for this long belongs to a read that died
POLL_S = 10.0
_STAMP = "%Y%m%dT%H%M%S%fZ"


def chunk_days() -> int:
    return settings.current().backfill_chunk_days


def cache_hours() -> int:
    return settings.current().backfill_cache_hours


def applies(run: SyncRun) -> bool:
    """True for a full-scope backfill run while the cache is on (not for the cache's own chunk read)."""
    if run.run_type != "backfill" or run.account_ids or isinstance(run, _ChunkRun):
        return False
    return chunk_days() > 0 and cache_hours() > 0


def _now() -> datetime:
    return datetime.now(UTC)


def run_days(run: SyncRun) -> tuple[date, date]:
    """First and last day of the run's event window (the days a fetched run asks InsightIQ for)."""
    first, last = day_range(run)
    return date.fromisoformat(first), date.fromisoformat(last)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


@dataclass(frozen=True)
class Entry:
    """One cache entry: a part's files over days [first, last], read from `written` on."""

    path: Any
    first: date
    last: date
    written: datetime

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def parse(cls, path: Any) -> Entry | None:
        """The entry a directory name describes (`<first>_<last>_<written>_<nonce>`), None for others."""
        parts = path.name.split("_")
        if len(parts) != 4:
            return None
        try:
            first, last = date.fromisoformat(parts[0]), date.fromisoformat(parts[1])
            written = datetime.strptime(parts[2], _STAMP).replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(path, first, last, written)

    def covers(self, run: SyncRun, now: datetime, lifetime: timedelta) -> bool:
        first, last = run_days(run)
        inside = self.first <= first and last <= self.last
        return inside and run.end <= self.written and now - self.written < lifetime

    def complete(self) -> bool:
        return files.exists(self.path / MARKER)

    def marker(self) -> dict[str, Any]:
        return json.loads(files.read_text(self.path / MARKER))


class _ChunkRun(SyncRun):
    """A backfill SyncRun over a chunk's days whose files go to a cache entry instead of a run directory
    (run_type backfill: the fetch reads in full and leaves the directory snapshot alone)."""

    def __init__(self, first: date, last: date, entry_dir: Any) -> None:
        super().__init__(
            run_id=f"backfill-cache {entry_dir.name}",
            start=_midnight(first),
            end=_midnight(last + timedelta(days=1)),
            skip_hook=True,
            dry_run=False,
            account_ids=(),
            run_type="backfill",
        )
        object.__setattr__(self, "_entry_dir", entry_dir)

    @property
    def dir(self) -> Any:
        return self._entry_dir


def _claim(entry: Entry) -> dict[str, Any] | None:
    try:
        return json.loads(files.read_text(entry.path / CLAIM))
    except (FileNotFoundError, ValueError):
        return None


def pending(part: str, run: SyncRun, now: datetime | None = None) -> Entry | None:
    """The newest read in progress by another run (a live claim, no marker yet) whose entry will serve
    `run`, or None."""
    now = now or _now()
    lifetime = timedelta(hours=cache_hours())
    for entry in entries(part):
        if not entry.covers(run, now, lifetime) or entry.complete():
            continue
        claim = _claim(entry)
        if claim is None or claim.get("run_id") == run.run_id:  # its own earlier attempt died
            continue
        beat = datetime.fromisoformat(claim["beat"])
        if (now - beat).total_seconds() < CLAIM_STALE_S:
            return entry
    return None


class _Heartbeat:
    """Rewrites an entry's claim every BEAT_S seconds while its read runs; removes it at the end."""

    def __init__(self, path: Any, run_id: str) -> None:
        self.path, self.run_id = path / CLAIM, run_id
        self.stop = threading.Event()
        self.beat()
        self.thread = threading.Thread(target=self._loop, name="backfill-cache-claim", daemon=True)
        self.thread.start()

    def beat(self) -> None:
        claim = {"run_id": self.run_id, "beat": _now().isoformat()}
        with files.open_output(self.path, "wb") as fh:
            fh.write(json.dumps(claim).encode("utf-8"))

    def _loop(self) -> None:
        while not self.stop.wait(BEAT_S):
            self.beat()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        if storage.is_local(self.path):
            storage.local_path(self.path).unlink(missing_ok=True)
        else:
            self.path.fs.rm(self.path.path)


def _part_dir(part: str) -> Any:
    return storage.data_root() / CACHE_DIR / part


def entries(part: str) -> list[Entry]:
    """Every entry directory of a part (complete or not), newest first."""
    base = _part_dir(part)
    try:
        children = list(base.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [e for e in (Entry.parse(c) for c in children) if e is not None]
    return sorted(found, key=lambda e: e.written, reverse=True)


def find(part: str, run: SyncRun, now: datetime | None = None) -> Entry | None:
    """The newest complete entry of `part` that may serve `run`, or None."""
    now = now or _now()
    lifetime = timedelta(hours=cache_hours())
    for entry in entries(part):
        if entry.covers(run, now, lifetime) and entry.complete():
            return entry
    return None


def chunk_for(part: str, run: SyncRun, now: datetime | None = None) -> tuple[date, date]:
    """The days the next read for `run` covers: from the run's first day forward CHUNK_DAYS days (capped
    at today, never short of the run's last day), or - when a fresh complete entry starts the day after the
    run's last day (a backfill running backwards) - the CHUNK_DAYS days ending on the run's last day."""
    now = now or _now()
    first, last = run_days(run)
    span = timedelta(days=chunk_days() - 1)
    lifetime = timedelta(hours=cache_hours())
    for entry in entries(part):
        fresh = now - entry.written < lifetime
        if fresh and entry.first == last + timedelta(days=1) and entry.complete():
            return min(first, last - span), last
    return first, max(last, min(first + span, now.date()))


def _file_nodes(result: Any) -> Iterator[dict[str, Any]]:
    """The {"path", "count"} dicts of a fetch result (what the fetch function wrote)."""
    if isinstance(result, dict):
        if "path" in result and "count" in result:
            yield result
        else:
            for value in result.values():
                yield from _file_nodes(value)


def _prune(part: str, now: datetime) -> None:
    """Delete the part's entries older than the cache lifetime (complete or not; never a fresh one, which
    another task might still be writing)."""
    lifetime = timedelta(hours=cache_hours())
    for entry in entries(part):
        if now - entry.written >= lifetime:
            storage.remove_tree(entry.path, parent=_part_dir(part))


def fill(
    part: str, first: date, last: date, read: Callable[[SyncRun], dict[str, Any]], run_id: str = ""
) -> Entry:
    """Read days [first, last] of `part` with the full read `read` into a new entry, claimed
    for `run_id` while it runs; the marker goes last. Paths in the marker are relative to the entry."""
    started = _now()
    _prune(part, started)
    name = f"{first.isoformat()}_{last.isoformat()}_{started.strftime(_STAMP)}_{secrets.token_hex(4)}"
    path = storage.ensure_dir(_part_dir(part) / name)
    heartbeat = _Heartbeat(path, run_id)
    try:
        result = copy.deepcopy(read(_ChunkRun(first, last, path)))
        _finish(part, path, first, last, result)
    finally:
        heartbeat.close()
    return Entry(path, first, last, started)


def _finish(part: str, path: Any, first: date, last: date, result: dict[str, Any]) -> None:
    """The marker: the fetch result with paths relative to the entry; written last."""
    result.pop("requests", None)
    prefix = str(path).rstrip("/") + "/"
    for node in _file_nodes(result):
        if not str(node["path"]).startswith(prefix):
            raise RuntimeError(f"backfill cache: {node['path']} was written outside the entry {path}")
        node["path"] = str(node["path"])[len(prefix) :]
    marker = {"part": part, "first": first.isoformat(), "last": last.isoformat(), "result": result}
    with files.open_output(path / MARKER, "wb") as fh:
        fh.write(json.dumps(marker, indent=1, default=str).encode("utf-8"))


def _event_timestamps() -> dict[str, list[str]]:
    """Event source (fetched resource) -> the timestamp columns the transform filters it on. The directory
    (users, profiles, accounts: the account events' source) is copied whole: its rows are creators, not
    dated items."""
    columns: dict[str, list[str]] = {}
    for spec in load_mapping().events.values():
        if spec.source not in DIRECTORY_PARTS:
            columns.setdefault(spec.source, []).append(spec.timestamp)
    return columns


def _copy(src: Any, dst: Any) -> None:
    with files.open_input(src) as fin, files.open_output(dst) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def _copy_days(src: Any, dst: Any, columns: list[str], first: date, last: date) -> int:
    """Copy the rows of an event file dated on days [first, last] (by any of `columns`, UTC), and the rows
    with no parseable date (the transform sets those aside itself); returns the rows written."""
    lo, hi = pd.Timestamp(_midnight(first)), pd.Timestamp(_midnight(last + timedelta(days=1)))
    kept = 0
    with files.open_input(src) as fin:
        source = pq.ParquetFile(fin)
        schema = source.schema_arrow
        present = [c for c in columns if c in schema.names]
        with files.open_output(dst) as fout, pq.ParquetWriter(fout, schema) as writer:
            for batch in source.iter_batches(batch_size=50_000):
                table = pa.Table.from_batches([batch], schema)
                inside = np.zeros(len(table), dtype=bool)
                dated = np.zeros(len(table), dtype=bool)
                for column in present:
                    ts = parse_timestamps(table[column])
                    inside |= np.asarray((ts >= lo) & (ts < hi), dtype=bool)
                    dated |= np.asarray(ts.notna(), dtype=bool)
                table = table.filter(pa.array(inside | ~dated))
                kept += len(table)
                writer.write_table(table)
    return kept


def serve(entry: Entry, run: SyncRun) -> dict[str, Any]:
    """The entry's files, copied into the run's directory (event files: the run's days only), as the
    result the full read would have returned (paths and counts of the run's files)."""
    result = copy.deepcopy(entry.marker()["result"])
    first, last = run_days(run)
    events = _event_timestamps()
    for node in _file_nodes(result):
        relative = node["path"]
        src, dst = entry.path / relative, run.dir / relative
        resource = relative.split("/")[1] if relative.startswith("fetch/") else ""
        if resource in events:
            node["count"] = _copy_days(src, dst, events[resource], first, last)
        else:
            _copy(src, dst)
        node["path"] = str(dst)
    return result


def _wait_for_entry(part: str, run: SyncRun) -> Entry | None:
    """A complete entry serving `run`, waiting while another run's live claim will produce one; None when
    there is neither (the caller reads)."""
    while True:
        entry = find(part, run)
        if entry is not None or pending(part, run) is None:
            return entry
        clock.sleep(POLL_S)


def cached(part: str, hook, run: SyncRun, read: Callable[[SyncRun], dict[str, Any]]) -> dict[str, Any]:
    """`part` of `run`'s files served from a cache entry: a complete one covering the run's days, the one
    another run is writing (waited for), or a new one this task fills with `read` over the chunk's days
    (`read`: the full read of the part, creator_sync.sync.full_fetch, for a chunk SyncRun)."""
    entry = _wait_for_entry(part, run)
    hit = entry is not None
    if entry is None:
        entry = fill(part, *chunk_for(part, run), read, run.run_id)
    result = serve(entry, run)
    result["requests"] = hook.stats or ClientStats().as_dict()
    result["backfill_cache"] = {
        "entry": entry.name,
        "days": [entry.first.isoformat(), entry.last.isoformat()],
        "hit": hit,
    }
    return json.loads(json.dumps(result, default=str))
