"""InsightIQ Parquet -> Insider users JSON Lines, with memory flat in the number of creators and of
content/income rows.

Every record is assigned to a bucket: a range of user ids (`_Ranges`, bounds from a sample of the ids), so
that a bucket holds about `creator_rows` users/profiles/accounts rows and `ROWS_PER_BUCKET` event rows.
1. users, profiles and accounts are streamed (`ParquetFile.iter_batches`, only the columns the mapping
   reads, `creators.source_columns`) and spooled to their bucket's Arrow IPC file.
2. contents and transactions are streamed chunk by chunk; rows inside the run's event window
   [events_from, end) (its data interval, plus a look-back for late-arriving data) become event JSON
   (column-wise) and are spooled to their bucket; content engagement of the rows inside the data interval
   [start, end) itself is summed per (creator, platform) per chunk and the partial sums spooled too, so an
   attribute never depends on the look-back.
3. per bucket, in user id order: its creators are built (pandas, `creators.build_creators`), get their
   metrics and events (deduplicated, sorted), are validated and written as lines of `users.jsonl`; rejected
   ones go to `rejected.jsonl` with reason+payload. Only one bucket is in memory at a time.

users.jsonl is in user id order whatever the number of buckets (ranges, not hashes), so the output does not
depend on the chunk sizes.

Records without the id they are joined on (creator_sync.pipeline.malformed) are set aside first: user records
go to rejected.jsonl (reason malformed_source_record, counted as fetched creators), profile / account /
event records to malformed.jsonl.

Outputs in `out_dir`: users.jsonl, rejected.jsonl, malformed.jsonl, clears.jsonl (the per-platform attributes
of platforms a written user has no connected account on, for the Delete User Attribute API:
creator_sync.pipeline.clearing), user_hashes.parquet (uuid, attr_hash, events), transform_stats.json.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from creator_sync import settings
from creator_sync.pipeline import clearing, engagement, income
from creator_sync.pipeline import events as ev
from creator_sync.pipeline import malformed as bad
from creator_sync.pipeline.attributes import USER_KEY
from creator_sync.pipeline.creators import (
    add_metrics,
    build_creators,
    head_json,
    per_platform,
    source_columns,
)
from creator_sync.pipeline.drift import schema_drift
from creator_sync.pipeline.keys import attribute_hash
from creator_sync.pipeline.late_history import EarlyRows
from creator_sync.pipeline.mapping import Mapping, load_mapping
from creator_sync.pipeline.sources import (
    SWEEP_CONTENTS,
    SWEEPS,
    Inputs,
    count_rows,
    discover_inputs,
    iter_chunks,
    iter_tables,
    unified_schema,
)
from creator_sync.pipeline.stats import TransformStats, load_stats, write_stats  # noqa: F401 - re-exported
from creator_sync.pipeline.validate import (
    MALFORMED_EMAIL,
    NO_USABLE_IDENTIFIER,
    NON_E164_PHONE,
    first_reason,
    identifier_reasons,
    size_reasons,
)
from creator_sync.progress import track

CHUNK_ROWS = 50_000  # rows read at a time: with the chunks in flight beside it, the transform's peak
ROWS_PER_BUCKET = 100_000  # bounds pass-3 memory: a bucket holds about this many events
CREATOR_ROWS = 50_000  # ... and about this many users + profiles + accounts rows
MAX_BUCKETS = 256  # open spool files: two per bucket while events are read
_SAMPLE_ROWS = 100_000  # ids sampled to place the bucket bounds
_MAX_SORT_KEY = 2**62  # pass 3 sorts on one combined int64 key below this, else np.lexsort


@dataclass
class TransformResult:
    users_path: Path
    rejected_path: Path
    hashes_path: Path
    stats_path: Path
    stats: TransformStats
    malformed_path: Path | None = None
    clears_path: Path | None = None


class _Ranges:
    """Buckets as ranges of user ids: bucket i holds the ids in [bounds[i - 1], bounds[i]) (Python string
    order, the order `sorted` and Arrow's sort give)."""

    def __init__(self, bounds: list[str]):
        self.bounds = np.asarray(bounds, dtype=object)
        self.count = len(self.bounds) + 1

    def of(self, uuids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """The bucket of each id; each distinct id is looked up once (dictionary encoding)."""
        if not len(self.bounds):
            return np.zeros(len(uuids), dtype=np.int64)
        encoded = pc.dictionary_encode(pc.cast(uuids, pa.string()))
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        distinct = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
        per_value = np.searchsorted(self.bounds, distinct, side="right").astype(np.int64)
        return per_value[encoded.indices.to_numpy(zero_copy_only=False)]


def _sample_ranges(inputs: dict, buckets: int, chunk_rows: int) -> _Ranges:
    """`buckets` ranges holding about as many users/profiles/accounts rows each: bounds at the quantiles of
    a sample (every k-th row) of their user ids."""
    if buckets <= 1:
        return _Ranges([])
    keys = {resource: bad.ID_COLUMN[resource] for resource in ("users", "profiles", "accounts")}
    rows = sum(count_rows(inputs.get(resource) or []) for resource in keys)
    step = max(1, rows // _SAMPLE_ROWS)
    sample = []
    for resource, key in keys.items():
        paths = inputs.get(resource) or []
        schema = unified_schema(paths, [key])
        if not len(schema):
            continue
        for _, table in iter_tables(paths, schema, chunk_rows):
            ids = pc.cast(table[key], pa.string()).combine_chunks()
            sample.append(ids.take(pa.array(np.arange(0, len(ids), step))))
    if not sample:
        return _Ranges([])
    distinct = pc.drop_null(pc.unique(pa.concat_arrays(sample)))
    distinct = distinct.take(pc.sort_indices(distinct)).to_pylist()
    bounds = sorted({distinct[i * len(distinct) // buckets] for i in range(1, buckets)} - {distinct[0]})
    return _Ranges(bounds)


class _Background:
    """One worker thread running jobs in submission order (file writes, spooling) while the caller goes on
    computing: Arrow and file writes release the GIL. At most `depth` jobs wait, so memory stays bounded.
    After a job fails the later ones are skipped; the error is raised (once) by `submit` or `close`."""

    def __init__(self, depth: int = 2):
        self.jobs: queue.Queue[Callable[[], object] | None] = queue.Queue(maxsize=depth)
        self.failed = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="transform-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            if not self.failed:
                try:
                    job()
                except BaseException as exc:  # re-raised in the caller's thread
                    self.error, self.failed = exc, True

    def submit(self, job: Callable[[], object]) -> None:
        self._raise()
        self.jobs.put(job)

    def close(self) -> None:
        """Wait for the queued jobs to finish."""
        if self.thread.is_alive():
            self.jobs.put(None)
            self.thread.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error


class _AsyncFile:
    """`write` queued on a `_Background` (the data must not be modified afterwards)."""

    def __init__(self, background: _Background, file):
        self.background, self.file = background, file

    def write(self, data) -> None:
        self.background.submit(lambda: self.file.write(data))


def _prefetch(items: Iterable, depth: int = 1) -> Iterator:
    """Produce `items` in a thread, `depth` ahead (Parquet decoding overlaps the caller's work)."""
    done = object()
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                ready.put((item, None))
            ready.put((done, None))
        except BaseException as exc:  # re-raised in the consumer
            ready.put((done, exc))

    thread = threading.Thread(target=produce, name="transform-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        thread.join()


class _Spool:
    """One Arrow IPC stream per bucket (of the rows' `key` column), opened on first use."""

    def __init__(self, root: Path, ranges: _Ranges, schema: pa.Schema = ev.SPOOL_SCHEMA, key: str = "uuid"):
        self.root, self.ranges, self.schema, self.key, self.writers = root, ranges, schema, key, {}
        root.mkdir(parents=True, exist_ok=True)

    def path(self, bucket: int) -> Path:
        return self.root / f"bucket-{bucket:04d}.arrow"

    def write(self, table: pa.Table) -> None:
        if not len(table):
            return
        buckets = self.ranges.of(table[self.key])
        order = np.argsort(buckets, kind="stable")
        table, counts = table.take(pa.array(order)), np.bincount(buckets, minlength=self.ranges.count)
        offset = 0
        for bucket in np.flatnonzero(counts):
            part = table.slice(offset, counts[bucket])
            offset += counts[bucket]
            if bucket not in self.writers:
                self.writers[bucket] = pa.ipc.new_stream(self.path(bucket), self.schema)
            self.writers[bucket].write_table(part)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def read(self, bucket: int) -> pa.Table:
        if not self.path(bucket).exists():
            return self.schema.empty_table()
        with pa.ipc.open_stream(self.path(bucket)) as reader:
            return reader.read_all()

    def pop(self, bucket: int) -> pa.Table:
        """Read a bucket and delete its file (its disk space is not needed any more)."""
        table = self.read(bucket)
        self.path(bucket).unlink(missing_ok=True)
        return table


class _MalformedOut:
    """malformed.jsonl: dead-letter rows of records that are not creators, counted per resource."""

    def __init__(self, path: Path, stats: TransformStats):
        self.path, self.stats = path, stats
        self.file = path.open("w", encoding="utf-8")

    def write(self, resource: str, letters: list[dict]) -> None:
        if letters:
            self.stats.malformed_records[resource] = self.stats.malformed_records.get(resource, 0) + len(
                letters
            )
            self.file.writelines(json.dumps(letter) + "\n" for letter in letters)

    def close(self) -> None:
        self.file.close()


def _missing_ids(values: pa.ChunkedArray) -> pa.Array:
    """True where an id is null or blank (the record cannot be joined to a creator)."""
    text = pc.cast(values, pa.string())
    blank = pc.or_kleene(pc.is_null(text), pc.equal(pc.utf8_trim_whitespace(text), ""))
    return pc.fill_null(blank, True)


def _dead_letters(resource: str, paths: list, bad_rows: dict[Path, list[np.ndarray]], chunk_rows: int):
    """Dead-letter rows of the records without their id, every column of them (read again, only the
    batches that hold such records); columns of the resource's other files are there as null."""
    if not bad_rows:
        return []
    order = unified_schema(paths).names
    letters = []
    for path in paths:
        rows = np.concatenate(bad_rows[Path(path)]) if Path(path) in bad_rows else None
        if rows is None:
            continue
        offset = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            here = rows[(rows >= offset) & (rows < offset + len(batch))] - offset
            offset += len(batch)
            if len(here):
                frame = pa.Table.from_batches([batch]).take(pa.array(here)).to_pandas()
                frame = frame.reindex(columns=order)
                key = USER_KEY[resource]
                letters += [bad.dead_letter(resource, row, key) for row in frame.to_dict(orient="records")]
    return letters


def _spool_creators(
    inputs: dict, m: Mapping, ranges: _Ranges, root: Path, chunk_rows: int, malformed, stats
) -> tuple[dict[str, _Spool], list[dict]]:
    """Pass 1: users, profiles, accounts and (when mapped) audience, only the columns the mapping reads, to
    their buckets' files. Returns the spools and the dead letters of user records without their id
    (rejected creators)."""
    spools, bad_users = {}, []
    for resource, columns in source_columns(m).items():
        paths = inputs.get(resource) or []
        key = USER_KEY[resource]
        schema = unified_schema(paths, columns)
        if key not in schema.names:  # no file has the id: every record is malformed
            schema = schema.append(pa.field(key, pa.string()))
        spool = spools[resource] = _Spool(root / resource, ranges, schema, key)
        bad_rows: dict[Path, list[np.ndarray]] = {}
        offsets: dict[Path, int] = {}
        for path, table in iter_tables(paths, schema, chunk_rows):
            offset = offsets.get(path, 0)
            offsets[path] = offset + len(table)
            missing = _missing_ids(table[key])
            if pc.any(missing).as_py():
                bad_rows.setdefault(path, []).append(np.flatnonzero(np.asarray(missing)) + offset)
                table = table.filter(pc.invert(missing))
            spool.write(table)
        spool.close()
        letters = _dead_letters(resource, paths, bad_rows, chunk_rows)
        if resource == "users":
            bad_users = letters
        else:
            malformed.write(resource, letters)
    stats.fetched_creators = len(bad_users)  # a user record without its id: rejected, with its reason
    if bad_users:
        stats.malformed_records["users"] = len(bad_users)
    return spools, bad_users


def _event_inputs(inputs: dict, m: Mapping, window, sweep_from) -> list[tuple]:
    """(event spec, label, paths, [from, end)) per event source: the run's window, and for the sweeps'
    records (SWEEPS: the income sweep's transactions, the per-account contents sweep's contents) the sweep's
    window [sweep_from, end)."""
    groups = [(spec, spec.source, inputs.get(spec.source) or [], window) for spec in m.events.values()]
    for label, source in SWEEPS.items():
        sweep = inputs.get(label) or []
        if sweep and sweep_from is None:
            raise ValueError(f"{label} files need sweep_from (the start of the sweep's window)")
        if sweep:
            span = (min(utc(sweep_from), window[0]), window[1])
            groups += [(spec, label, sweep, span) for spec in m.events.values() if spec.source == source]
    return groups


def _spool_events(
    inputs: dict,
    m: Mapping,
    window,
    start,
    chunk_rows,
    spool,
    metric_spool,
    stats,
    background: _Background,
    malformed=None,
    sweep_from=None,
    rolling: _Rolling | None = None,
    earnings: _Earnings | None = None,
    early: EarlyRows | None = None,
) -> None:
    """Pass 2. Events of the window [events_from, end) (the income sweep's transactions: [sweep_from, end))
    to `spool`; per-chunk sums of the content metrics of the rows at or after `start` to `metric_spool`;
    per-chunk engagement-window sums of the contents to `rolling.spool` (creator_sync.pipeline.engagement);
    every income item read (transactions and payouts, inside the window or not) to `earnings.spool`
    (creator_sync.pipeline.income); the events of rows before the window to `early`
    (creator_sync.pipeline.late_history).

    Records whose time is unreadable are dead letters (malformed.jsonl, `_undated`), each once a
    run however many events and reads (window, sweep) take its list.

    Reading the next chunk and spooling the previous one's events run in threads beside the event build."""
    seen_undated: set[str] = set()
    for spec, label, paths, span in _event_inputs(inputs, m, window, sweep_from):
        metrics = m.content_metrics if spec.source == "contents" else {}
        windowed = rolling is not None and spec.source == "contents" and bool(m.engagement_columns)
        columns = list(dict.fromkeys(spec.columns + [c for cols in metrics.values() for c in cols]))
        columns += [c for c in m.engagement_columns.values() if windowed and c not in columns]
        earning = earnings is not None and earnings.reads(spec)
        columns += [c for c in income.COLUMNS if earning and c not in columns]
        with contextlib.closing(_prefetch(iter_chunks(paths, columns, chunk_rows))) as chunks:
            for chunk in track(chunks, f"transform {label}", unit="chunks", gauges=lambda: stats.rows_read):
                stats.chunks += 1
                stats.rows_read[label] = stats.rows_read.get(label, 0) + len(chunk)
                if malformed is not None:
                    chunk, letters = bad.split_table(spec.source, chunk, spec.user)
                    malformed.write(spec.source, letters)
                if windowed:
                    rolling.add(chunk, spec, m, background)
                if earning:
                    earnings.add(chunk, spec, background, malformed)
                ts = ev.parse_timestamps(chunk[spec.timestamp])
                undated = _undated(chunk, spec, ts, malformed, earning, seen_undated)
                if early is not None:
                    stats.rows_early += early.add(chunk, spec, ts, span[0])
                kept, ts = ev.in_interval(chunk, spec, *span, ts=ts)
                stats.rows_outside_interval += len(chunk) - len(kept) - undated
                if len(kept):
                    _spool_kept(kept, ts, spec, start, metrics, (spool, metric_spool), stats, background)
    background.submit(spool.close)
    background.submit(metric_spool.close)
    if rolling is not None:
        background.submit(rolling.spool.close)
    if earnings is not None:
        background.submit(earnings.spool.close)


def _spool_kept(kept: pa.Table, ts, spec, start, metrics, spools, stats, background: _Background) -> None:
    """The events of a chunk's rows inside the window to the event spool; the content metric sums of the
    rows at or after `start` (the look-back's rows are the previous run's) to the metric spool."""
    spool, metric_spool = spools
    events = ev.build_events(kept, ts, spec)
    background.submit(lambda events=events: spool.write(events))
    early = np.asarray(ts < start, dtype=bool)
    stats.rows_in_lookback += int(early.sum())
    own = kept.filter(pa.array(~early)) if early.any() else kept
    sums = ev.metric_sums(own, spec, metrics)
    if sums is not None and len(sums):
        sums = sums.select(metric_spool.schema.names).cast(metric_spool.schema)
        background.submit(lambda sums=sums: metric_spool.write(sums))


def _undated(chunk: pa.Table, spec, ts, malformed, earning: bool, seen: set[str]) -> int:
    """Keep the chunk's records whose time is unreadable (no run's interval holds them: neither an
    hourly run, a backfill nor the history path would send them) as dead letters, each once a run (`seen`:
    the keys written); an income item the income step already kept (`earning`: its letter names the same
    fault) is not kept twice. Returns how many rows of the chunk they are (not outside the interval)."""
    mask = ev.unreadable_times(chunk, spec, ts)
    count = int(mask.sum())
    if not count or malformed is None or earning:
        return count
    letters = []
    for row in chunk.filter(pa.array(mask)).to_pylist():
        letter = bad.unreadable_time(spec.source, row, spec.timestamp)
        if letter["user_key"] not in seen:
            seen.add(letter["user_key"])
            letters.append(letter)
    malformed.write(spec.source, letters)
    return count


@dataclass(frozen=True)
class ContentsRead:
    """How a run read its contents when not as its event window says (a targeted run's). `since`: the files
    cover [since, end) (a targeted run reads its accounts' contents over the engagement window), so the
    engagement attributes are sent, while events stay inside [events_from, end): an item read again is not
    an event again. `accounts`: the accounts whose contents the files hold (None: every account's); a
    creator's engagement on a platform is sent only when all its connected accounts there were read."""

    since: datetime | None = None
    accounts: frozenset[str] | None = None


@dataclass
class _Rolling:
    """The engagement window [since, end) and its spool; `full`: the run's contents cover all of it."""

    spool: _Spool
    since: datetime
    end: datetime
    days: int
    full: bool
    read_accounts: frozenset[str] | None = None  # whose contents were read (a targeted run's); None: all

    def add(self, chunk: pa.Table, spec, m: Mapping, background: _Background) -> None:
        if not self.full:  # nothing of a partial window is sent (creator_sync.pipeline.engagement)
            return
        ts = ev.parse_timestamps(chunk[spec.timestamp])
        sums = engagement.partials(chunk, ts, spec, m.engagement_columns, self.since, self.end)
        if sums is not None and len(sums):
            background.submit(lambda: self.spool.write(sums))


@dataclass
class _Earnings:
    """The income items' spool (pass 2) and, per bucket (pass 3), the state they are kept in and the income
    attributes are read from (creator_sync.pipeline.income). Without a state or income attributes: nothing."""

    spool: _Spool
    state: income.IncomeState | None
    m: Mapping

    def reads(self, spec) -> bool:
        return self.state is not None and self.m.income is not None and spec.source in income.KINDS

    def add(self, chunk: pa.Table, spec, background: _Background, malformed) -> None:
        items, letters = income.items(chunk, spec, self.m)
        if malformed is not None:
            malformed.write(spec.source, letters)
        if len(items):
            background.submit(lambda: self.spool.write(items))

    def attributes(self, bucket: int, creators: pd.Index, as_of) -> tuple[pd.DataFrame, dict[str, list[str]]]:
        """The bucket's income attributes (uuid index) and, per creator, the income attributes to clear."""
        if self.state is None or self.m.income is None:
            return pd.DataFrame(), {}
        items = income.as_items(self.spool.pop(bucket), creators)
        totals = self.state.totals(items, creators, as_of)
        return income.attributes(totals, self.m), income.cleared(totals, self.m)


def _rolling(
    out: Path,
    ranges: _Ranges,
    inputs: dict,
    end,
    events_from,
    sweep_from,
    days: int | None,
    contents: ContentsRead | None = None,
):
    """The run's engagement window: `days` (default the setting) before `end`; the contents cover it
    when the run's content read window (events_from, `contents.since` when the contents were read further
    back than the events, or the contents sweep's sweep_from) reaches back."""
    days = days or settings.current().engagement_window_days
    since = utc(engagement.window_start(end, days))
    contents = contents or ContentsRead()
    covered = events_from if contents.since is None else min(events_from, utc(contents.since))
    if inputs.get(SWEEP_CONTENTS) and sweep_from is not None:
        covered = min(covered, utc(sweep_from))
    spool = _Spool(out / "_spool" / "engagement", ranges, engagement.schema())
    return _Rolling(spool, since, end, days, covered <= since, contents.accounts)


def _metric_spool(out: Path, ranges: _Ranges, m: Mapping) -> _Spool:
    return _Spool(out / "_spool" / "metrics", ranges, _metric_schema(m))


def _metric_schema(m: Mapping) -> pa.Schema:
    return pa.schema(
        [("uuid", pa.string()), ("platform", pa.string())]
        + [(name, pa.float64()) for name in m.content_metrics]
    )


def _bucket_metrics(partials: pa.Table, m: Mapping) -> pd.DataFrame:
    """A bucket's per-chunk metric sums -> one row per creator, `{platform}_{metric}` columns."""
    if not len(partials):
        return pd.DataFrame()
    names = list(m.content_metrics)
    summed = partials.to_pandas().groupby(["uuid", "platform"], as_index=False)[names].sum()
    return per_platform(summed, names)


def _frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas() if len(table) else pd.DataFrame()


@dataclass
class _PerUser:
    """A bucket's events per user (users in uuid order): events JSON comma-joined, count, first problem."""

    uuid: pa.Array
    events_json: pa.Array
    events: np.ndarray
    reason: pa.Array


def _ranks(values: pa.Array) -> tuple[np.ndarray, int]:
    """Per row: the rank of its value among the distinct values (Arrow's sort order), and how many."""
    encoded = pc.dictionary_encode(values)
    rank = pc.rank(encoded.dictionary, sort_keys="ascending").to_numpy() - 1
    return rank[encoded.indices.to_numpy(zero_copy_only=False)], len(encoded.dictionary)


def _bucket_events(events: pa.Table, creators: pd.Index, stats: TransformStats) -> _PerUser:
    """Orphans (users not in this fetch) and duplicates (same item fetched twice: the later row wins) are
    dropped; events are ordered by (uuid, ts, event_name, item_id). Keys are ranked once (hashing the
    distinct values), then deduplicated and sorted as integers."""
    known = pc.is_in(events["uuid"], value_set=pa.array(creators.astype(object), pa.string()))
    kept = events.filter(known).combine_chunks()
    stats.orphan_events += len(events) - len(kept)
    if not kept.num_rows:
        empty = pa.array([], pa.string())
        return _PerUser(empty, empty, np.array([], np.int64), empty)
    column = {name: kept[name].chunk(0) for name in kept.column_names}
    uuid, _ = _ranks(column["uuid"])
    name, n_name = _ranks(column["event_name"])
    item, n_item = _ranks(column["item_id"])
    key = (uuid * n_name + name) * n_item + item
    _, last = np.unique(key[::-1], return_index=True)  # first in reverse = the last row of each key
    last = len(key) - 1 - last
    stats.duplicate_events += len(kept) - len(last)
    ts = column["ts"].cast(pa.int64()).to_numpy()[last]
    ts_values, ts = np.unique(ts, return_inverse=True)
    if len(ts_values) * (int(uuid.max()) + 1) * n_name * n_item < _MAX_SORT_KEY:  # one int64 sort key
        order = last[
            np.argsort(((uuid[last] * len(ts_values) + ts) * n_name + name[last]) * n_item + item[last])
        ]
    else:
        order = last[np.lexsort((item[last], name[last], ts, uuid[last]))]
    kept = kept.take(pa.array(order)).combine_chunks()
    for value, count in zip(*pc.value_counts(kept["event_name"]).flatten(), strict=True):
        stats.events_by_name[value.as_py()] = stats.events_by_name.get(value.as_py(), 0) + count.as_py()
    # the users' runs of rows, in uuid order
    sorted_uuid = uuid[order]
    starts = np.flatnonzero(np.diff(sorted_uuid, prepend=-1))
    offsets = np.append(starts, len(order)).astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), kept["event_json"].chunk(0)), ",")
    reason = pa.nulls(len(starts), pa.string())
    if kept["reason"].null_count < len(kept):  # first non-null reason per user
        has = np.flatnonzero(np.asarray(pc.is_valid(kept["reason"])))
        user_of = np.searchsorted(starts, has, side="right") - 1
        first = np.unique(user_of, return_index=True)
        mask = np.zeros(len(starts), dtype=bool)
        mask[first[0]] = True
        reason = pc.replace_with_mask(reason, pa.array(mask), kept["reason"].chunk(0).take(has[first[1]]))
    user_ids = kept["uuid"].chunk(0).take(pa.array(starts))
    return _PerUser(user_ids, joined, np.diff(offsets).astype(np.int64), reason)


def _lines(heads: pa.Array, uuids: pa.Array, per_user: _PerUser) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """Per creator (in `uuids` order): its JSON line followed by "\n", event count, first event problem."""
    at = pc.index_in(uuids, value_set=per_user.uuid)
    events = per_user.events_json.take(at)
    with_events = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(heads, 0, -1), ',"events":[', events, "]}\n", ""
    )
    lines = pc.coalesce(with_events, pc.binary_join_element_wise(heads, "\n", ""))
    position = np.asarray(pc.fill_null(at, -1))
    counts = np.append(per_user.events, 0)[position]  # -1 (no events) -> the appended 0
    return lines, counts, per_user.reason.take(at)


def _write_bucket(creators, events, m, users_out, rejected_out, hashes, stats) -> None:
    per_user = _bucket_events(events, creators.index, stats)
    heads = head_json(creators, m)
    uuids = pa.array(creators.index.astype(object), pa.string())
    lines, counts, event_reason = _lines(pa.array(heads, pa.string()), uuids, per_user)
    size = pd.Series(pc.subtract(pc.binary_length(lines), 1).to_numpy(), index=creators.index)
    reason = creators["reason"].fillna(pd.Series(event_reason.to_pandas().values, index=creators.index))
    reason = reason.fillna(size_reasons(size, m.max_user_bytes))
    ok = reason.isna().to_numpy()
    if ok.any():
        _write_data(users_out, lines if ok.all() else lines.filter(pa.array(ok)))
    rejected = reason.dropna()
    for uuid, why in rejected.items():
        detail = creators.at[uuid, "detail"] if pd.notna(creators.at[uuid, "reason"]) else why
        record = {"user_key": uuid, "reason": why, "detail": detail}
        line = lines[creators.index.get_loc(uuid)].as_py()[:-1]
        rejected_out.write(json.dumps(record)[:-1] + ', "payload": ' + line + "}\n")
        stats.rejected[why] = stats.rejected.get(why, 0) + 1
    stats.users_written += int(ok.sum())
    stats.events_written += int(counts[ok].sum())
    for uuid, head, count in zip(creators.index[ok], heads[ok], counts[ok], strict=True):
        hashes.append((uuid, attribute_hash(json.loads(head)), int(count)))


def _write_data(out, lines: pa.Array) -> None:
    """Write a string array's values back to back (no copy into Python strings)."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    out.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])


def _with_reasons(creators: pd.DataFrame, m: Mapping) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "uuid": creators.index.to_series(),
            "email": creators["email"],
            "phone_number": creators["phone_number"],
        }
    )
    reason = identifier_reasons(frame, require_contact=m.require_contact_identifier)
    detail = first_reason(
        [
            (reason == MALFORMED_EMAIL, creators["email"].map(lambda v: f"not a valid email address: {v}")),
            (reason == NON_E164_PHONE, creators["phone_number"].map(lambda v: f"not an E.164 phone: {v}")),
        ],
        creators.index,
    )
    detail = detail.fillna(reason.replace(NO_USABLE_IDENTIFIER, "no valid email and no E.164 phone"))
    return creators.assign(reason=reason, detail=detail)


def transform_run(
    inputs: Inputs | str | Path,
    *,
    start: datetime,
    end: datetime,
    out_dir: str | Path,
    events_from: datetime | None = None,
    mapping: Mapping | None = None,
    chunk_rows: int = CHUNK_ROWS,
    buckets: int | None = None,
    creator_rows: int = CREATOR_ROWS,
    offboarded: Callable[[Iterable[str]], set[str]] | None = None,
    sweep_from: datetime | None = None,
    engagement_days: int | None = None,
    contents: ContentsRead | None = None,
    income_state: income.IncomeState | None = None,
    early: EarlyRows | None = None,
) -> TransformResult:
    """Transform one run's fetched files (a dict resource -> paths, or a directory, see `discover_inputs`).

    Events are kept when their timestamp is in [events_from, end) (aware datetimes; `events_from` defaults to
    `start`, an earlier one is the look-back for late data); content metrics sum [start, end) only.
    `offboarded(ids)` names creators who left (creator_sync.store.offboarded_ids): dropped before anything is
    written. The weekly sweeps (`transactions_sweep`, `contents_sweep`) keep events from `sweep_from` (the
    ledger drops those already acknowledged). `engagement_days`: the engagement window (default: the setting).
    `contents`: how far back and for which accounts the contents were read (`ContentsRead`: a targeted run's).
    `income_state`: where the income items are kept and the income attributes' totals read from
    (creator_sync.pipeline.income; None: no income attributes). `early` (creator_sync.pipeline.late_history)
    takes the events of the rows dated before the event window, for the late-history check.
    Memory: one chunk of `chunk_rows` rows while reading, then one bucket (a range of user ids with about
    `creator_rows` users/profiles/accounts rows and `ROWS_PER_BUCKET` event rows; `buckets` sets their number
    instead). The output does not depend on either.
    """
    m = mapping or load_mapping()
    start, end, events_from = _window(start, end, events_from)
    inputs, out, stats, ranges = _prepare(inputs, m, out_dir, buckets, creator_rows, chunk_rows)
    malformed = _MalformedOut(out / "malformed.jsonl", stats)
    spool, metric_spool = _Spool(out / "_spool" / "events", ranges), _metric_spool(out, ranges, m)
    rolling = _rolling(out, ranges, inputs, end, events_from, sweep_from, engagement_days, contents)
    earnings = _Earnings(_Spool(out / "_spool" / "income", ranges, income.SPOOL_SCHEMA), income_state, m)
    creator_spools, background, hashes_path = {}, _Background(), out / "user_hashes.parquet"
    hashes_out = pq.ParquetWriter(hashes_path, _HASHES_SCHEMA)
    try:
        creator_spools, bad_users = _spool_creators(
            inputs, m, ranges, out / "_spool", chunk_rows, malformed, stats
        )
        spools, more = (spool, metric_spool), (malformed, sweep_from, rolling, earnings, early)
        _spool_events(inputs, m, (events_from, end), start, chunk_rows, *spools, stats, background, *more)
        paths = out / "users.jsonl", out / "rejected.jsonl", out / "clears.jsonl"
        background.close()  # the spools are written and closed
        background = _Background()
        buckets_in = _BucketInputs(
            creator_spools, metric_spool, spool, offboarded, hashes_out, end, rolling, earnings
        )
        _write_outputs(paths, bad_users, ranges.count, buckets_in, m, background, stats)
    finally:
        spools = [spool, metric_spool, rolling.spool, earnings.spool, *creator_spools.values()]
        _close(background, hashes_out, malformed, spools, out)
    stats_path = write_stats(stats, out / "transform_stats.json")
    return TransformResult(paths[0], paths[1], hashes_path, stats_path, stats, malformed.path, paths[2])


def _prepare(inputs, m: Mapping, out_dir, buckets: int | None, creator_rows: int, chunk_rows: int):
    """The run's inputs by resource, its output directory (created), its stats (with the schema drift and
    the bucket count) and the buckets' id ranges."""
    inputs = discover_inputs(inputs) if isinstance(inputs, str | Path) else dict(inputs)
    out, stats = Path(out_dir), TransformStats(schema_drift=schema_drift(inputs, m))
    out.mkdir(parents=True, exist_ok=True)
    stats.buckets = buckets or _bucket_count(inputs, m, creator_rows)
    return inputs, out, stats, _sample_ranges(inputs, stats.buckets, chunk_rows)


def _window(start: datetime, end: datetime, events_from: datetime | None) -> tuple[datetime, ...]:
    start, end = utc(start), utc(end)
    events_from = start if events_from is None else utc(events_from)
    if events_from > start:
        raise ValueError(f"events_from ({events_from}) must not be after the interval start ({start})")
    return start, end, events_from


def _close(background, hashes_out, malformed, spools, out: Path) -> None:
    """Whatever happened: the background writes finish, every file closes, the spool directory goes."""
    try:
        background.close()
    finally:
        hashes_out.close()
        malformed.close()
        for each in spools:
            each.close()
        shutil.rmtree(out / "_spool", ignore_errors=True)


def _bucket_count(inputs: Inputs, m: Mapping, creator_rows: int) -> int:
    """Buckets enough for about ROWS_PER_BUCKET event rows and `creator_rows` creator rows each."""
    event_rows = sum(count_rows(inputs.get(s.source) or []) for s in m.events.values())
    event_rows += sum(count_rows(inputs.get(label) or []) for label in SWEEPS)
    source_rows = sum(count_rows(inputs.get(r) or []) for r in ("users", "profiles", "accounts"))
    by_rows = max(math.ceil(event_rows / ROWS_PER_BUCKET), math.ceil(source_rows / creator_rows))
    return max(1, min(MAX_BUCKETS, by_rows))


@dataclass
class _BucketInputs:
    """What each bucket is built from (the spools) and where its hashes go."""

    creator_spools: dict
    metric_spool: Any
    event_spool: Any
    offboarded: Callable[[Iterable[str]], set[str]] | None
    hashes_out: Any
    as_of: datetime  # the end of the run's data interval: time-relative attributes (age) are taken then
    rolling: Any  # _Rolling: the engagement window's spool
    earnings: Any = None  # _Earnings: the income items' spool and state


def _write_outputs(paths, bad_users, count: int, b: _BucketInputs, m: Mapping, background, stats) -> None:
    """users.jsonl (Arrow's UTF-8 bytes as they are, written while the next bucket is built),
    rejected.jsonl and clears.jsonl (line by line), bucket after bucket."""
    with (
        paths[0].open("wb") as users_file,
        paths[1].open("w", encoding="utf-8") as rejected_out,
        paths[2].open("w", encoding="utf-8") as clears_out,
    ):
        users_out = _AsyncFile(background, users_file)
        for letter in bad_users:
            rejected_out.write(json.dumps(letter) + "\n")
            stats.rejected[letter["reason"]] = stats.rejected.get(letter["reason"], 0) + 1
        for bucket in range(count):
            _write_one_bucket(bucket, b, m, (users_out, rejected_out, clears_out), stats)
        background.close()  # the last writes land before the files close


def _write_one_bucket(bucket: int, b: _BucketInputs, m: Mapping, outs: tuple, stats) -> None:
    """One bucket's creators -> its lines of `outs` (users.jsonl, rejected.jsonl, clears.jsonl)."""
    users_out, rejected_out, clears_out = outs
    frames = {r: _frame(spool.pop(bucket)) for r, spool in b.creator_spools.items()}
    creators = build_creators(
        frames["users"],
        frames["profiles"],
        frames["accounts"],
        m,
        audience=frames.get("audience"),
        as_of=b.as_of,
    )
    stats.fetched_creators += len(creators)
    if b.offboarded is not None and len(creators):
        creators, left = _without(creators, b.offboarded(creators.index))
        stats.offboarded += left
    gone: dict[str, list[str]] = {}  # income attributes to clear (a last payout that is gone)
    if b.earnings is not None:  # the income items of the bucket's creators kept, their totals read
        earned, gone = b.earnings.attributes(bucket, creators.index, b.as_of)
        creators = add_metrics(creators, earned)
    metrics = _bucket_metrics(b.metric_spool.pop(bucket), m)
    events = b.event_spool.pop(bucket)
    if not len(creators):
        stats.orphan_events += len(events)
        return
    creators = add_metrics(creators, metrics)
    r = b.rolling
    accounts = frames.get("accounts", pd.DataFrame())
    window = engagement.attributes(r.spool.pop(bucket), creators, r.days, r.full)
    creators = add_metrics(creators, engagement.read_in_full(window, accounts, r.read_accounts))
    names = m.cleared(tuple(engagement.ATTRIBUTES))
    creators, clears = clearing.split(creators, accounts, names, m.cleared_whole(), also=gone)
    creators = _with_reasons(creators, m)
    hashes: list[tuple[str, str, int]] = []
    _write_bucket(creators, events, m, users_out, rejected_out, hashes, stats)
    if hashes:
        b.hashes_out.write_table(_hashes_table(hashes))
    _write_clears(clears, {h[0] for h in hashes}, clears_out, stats)


def _write_clears(clears: pd.Series, written: set[str], out, stats: TransformStats) -> None:
    """clears.jsonl lines of the users written to users.jsonl (a rejected user is not at Insider by this
    run; the next run that sends it clears it)."""
    for uuid, attributes in clears.items():
        if uuid in written:
            out.write(clearing.clear_line(uuid, attributes))
            stats.clear_users += 1
            stats.clear_attributes += len(attributes)


_HASHES_SCHEMA = pa.schema([("uuid", pa.string()), ("attr_hash", pa.string()), ("events", pa.int64())])


def _hashes_table(hashes: list[tuple[str, str, int]]) -> pa.Table:
    return pa.table(
        {
            "uuid": pa.array([h[0] for h in hashes], pa.string()),
            "attr_hash": pa.array([h[1] for h in hashes], pa.string()),
            "events": pa.array([h[2] for h in hashes], pa.int64()),
        },
        schema=_HASHES_SCHEMA,
    )


def _without(creators: pd.DataFrame, ids: set[str]) -> tuple[pd.DataFrame, int]:
    keep = ~creators.index.isin(list(ids))
    return creators[keep], int((~keep).sum())


def utc(moment: datetime) -> pd.Timestamp:
    """Interval bounds as UTC timestamps (naive values are taken as UTC)."""
    ts = pd.Timestamp(moment)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
