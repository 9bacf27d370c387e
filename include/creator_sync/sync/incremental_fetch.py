"""The incremental fetch of a scheduled creator_sync run (CREATOR_SYNC_FETCH_MODE=incremental, see
creator_sync.sync.fetch_mode), and the snapshot update every run (but a backfill) ends its fetch with.

A scheduled run with a snapshot (creator_sync.sync.snapshot) makes the planner's reads
(creator_sync.sync.plan.plan_hourly, no webhook changes); the fetch engine (creator_sync.sync.fetch) picks
this strategy with `directory_kind`:
- `fetch_directory` (the fetch_creators task): sweep slice h % 24 of the users, accounts and profiles lists
  (h = the interval start's hours since the epoch), written to `<run>/directory_reads/<part>/` (outside
  the fetch directory: they are not the run's directory yet);
- `fetch_income_sweep` (each account shard): its share of the income accounts due in the weekly sweep
  (slice h % 168 of the snapshot's income accounts), each over the days since its previous sweep: their
  transactions written to `<run>/fetch/transactions_sweep/`, their payouts to `<run>/fetch/payouts_sweep/` -
  the transform keeps those events over the sweep's window
  (`income_sweep_from`), not only the run's, and the event ledger drops the ones already acknowledged;
- `fetch_contents`: the run's date-filtered list, as in a full run (creator_sync.sync.full_fetch); when the
  connection reads contents per account (creator_sync.sync.contents_read), each account shard reads its share
  of the accounts due in the weekly contents sweep (slice h % 168 of the snapshot's accounts with contents),
  each over the week before the run's end, to `<run>/fetch/contents_sweep/` - kept by the transform over the
  sweep's window like the income sweep's transactions.

`complete_directory` (the transform task, before transforming: every fetch task has finished) then:
- incremental: merges the re-read rows into the snapshot's (a re-read row wins by id; the stored version is
  read batch by batch, creator_sync.sync.snapshot.StreamMerge, so the task never holds it), writes the
  merged FULL users/profiles/accounts into the run's fetch directory (so the transform and the upsert work as
  after a full read: the upsert skips the creators whose attributes did not change) and stores them as the
  new snapshot, both as the batches pass;
- full read: stores the run's fetched directory as the new snapshot, one row per id (its last read: offset
  paging can read a record twice), read batch by batch (creator_sync.sync.full_directory: the task holds the
  parts' id columns, never their rows);
- targeted (`account_ids`): merges what the run read into the snapshot; the run's files stay its accounts'
  creators, completed with those creators' other accounts and profiles from the snapshot (their attributes
  are built from all of them);
- backfill: nothing.

A run that fails before `complete_directory` leaves the snapshot as it was; the next run re-reads its slices
of the lists at the latest within a day (directory) or a week (income).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from creator_sync import files, storage
from creator_sync.hooks.insightiq import InsightIQHook
from creator_sync.progress import client_requests, track
from creator_sync.sync import account_status, contents_read, full_directory, plan
from creator_sync.sync import fetch_mode as modes
from creator_sync.sync import insightiq_reads as reads
from creator_sync.sync.incremental import execute, records
from creator_sync.sync.insightiq_reads import Refusals, note_refused
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.snapshot import KEY, PARTS, Meta, SnapshotStore, StreamMerge

log = logging.getLogger(__name__)

READS_DIR = "directory_reads"
OWNERS_FILE = "snapshot-owners.parquet"  # a targeted run's completion rows, see _complete_owners
VANISHED_FILE = "snapshot-vanished.parquet"  # a targeted run's accounts InsightIQ answered 404 for
OWNER_COLUMN = {"users": KEY, "profiles": "user.id", "accounts": "user.id"}
SWEEP_DIR = "transactions_sweep"  # creator_sync.pipeline.sources.SWEEP_TRANSACTIONS
CONTENTS_SWEEP_DIR = "contents_sweep"  # creator_sync.pipeline.sources.SWEEP_CONTENTS
PAYOUTS_SWEEP_DIR = "payouts_sweep"  # creator_sync.pipeline.sources.SWEEP_PAYOUTS
ENGAGEMENT_STATUS = "data.engagement.status"


def directory_kind(run: SyncRun, store: SnapshotStore | None = None) -> tuple[str, Meta | None]:
    """(kind, the snapshot the run starts from): kind is one of creator_sync.sync.fetch_mode's run kinds.
    Reads CREATOR_SYNC_FETCH_MODE, so an invalid value fails every run, not only incremental ones."""
    mode = modes.fetch_mode()
    if run.run_type == "backfill" and not run.account_ids:
        return modes.BACKFILL, None
    base = (store or SnapshotStore()).base_for(run.run_id)
    return modes.run_kind(run.run_type, run.account_ids, base is not None, mode), base


def sweep_hour(run: SyncRun) -> int:
    """The sweep cursor: the interval start's whole hours since the epoch."""
    return int(run.start.timestamp()) // 3600


def income_sweep_from(run: SyncRun) -> datetime:
    """Start of the income sweep's window: midnight (UTC) of the day INCOME_SWEEP_HOURS before the run's end,
    the first day plan_hourly's sweep reads."""
    first = (run.end - timedelta(hours=plan.INCOME_SWEEP_HOURS)).astimezone(UTC).date()
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def contents_accounts(accounts: pa.Table) -> tuple[str, ...]:
    """The snapshot's accounts that have contents (every engagement status but NOT_SUPPORTED), sorted (the
    contents sweep's stable order)."""
    if KEY not in accounts.column_names:
        return ()
    ids = accounts[KEY]
    if ENGAGEMENT_STATUS in accounts.column_names:
        # as text: a part whose statuses are all null reads back as a null or float column
        status = pc.cast(accounts[ENGAGEMENT_STATUS], pa.string())
        unsupported = pc.equal(status, contents_read.NO_CONTENTS_STATUS)
        ids = ids.filter(pc.invert(pc.fill_null(unsupported, False)))
    return tuple(sorted({str(v) for v in pc.drop_null(ids).to_pylist()}))


def planned_reads(
    run: SyncRun, base: Meta, hook: InsightIQHook | None = None, store: SnapshotStore | None = None
) -> list[plan.Read]:
    """The planner's reads of this incremental run (contents per account when the run reads them so: the
    mode is read through ``hook``)."""
    snapshot = base.planner_snapshot()
    per_account = hook is not None and contents_read.for_hook(hook, run.dir) == contents_read.PER_ACCOUNT
    if per_account:
        accounts = (store or SnapshotStore()).read(base, "accounts", columns=(KEY, ENGAGEMENT_STATUS))
        snapshot = dataclasses.replace(snapshot, contents_accounts=contents_accounts(accounts))
    return plan.plan_hourly(
        snapshot, plan.Changes(), run.start, run.end, sweep_hour(run), contents_per_account=per_account
    )


def fetch_directory(hook: InsightIQHook, run: SyncRun, base: Meta) -> dict[str, Any]:
    """The directory sweep slices of users, accounts and profiles -> `<run>/directory_reads/<part>/`."""
    reads = [r for r in planned_reads(run, base) if r.resource in plan.DIRECTORY]
    got = execute(hook, reads)
    out = run.dir / READS_DIR
    written = {}
    for part in PARTS:
        path = storage.ensure_dir(out / part) / f"{part}.parquet"
        written[part] = {"path": str(path), "count": files.write_records_parquet(got.get(part, []), path)}
    return {"mode": modes.SWEEP, "snapshot": base.version, **written, "requests": hook.stats}


def fetch_contents(hook: InsightIQHook, run: SyncRun, *, in_task: bool = False) -> dict[str, Any]:
    """The run's contents as in a full read (creator_sync.sync.full_fetch.fetch_contents), but for a 400 that
    switches the connection to per-account reads: the per-account contents sweep of the next runs reads back
    a week (plan.CONTENTS_SWEEP_HOURS), so this hour's contents arrive with it and this task makes no
    fleet-wide read (``in_task``: it reads them per account of the accounts list itself)."""
    mode = contents_read.for_hook(hook, run.dir)
    if mode == contents_read.PER_ACCOUNT and not in_task:
        return reads.no_contents(run, mode, "account shards")
    if mode == contents_read.ALL_ACCOUNTS:
        if (written := reads.all_accounts_contents(hook, run)) is not None:
            return written
        if not in_task:
            return reads.no_contents(run, contents_read.PER_ACCOUNT, "the next runs' sweep")
    return reads.contents_per_account(hook, run)


def _sweep_file(
    hook, run: SyncRun, reads: list[plan.Read], shard: int, name: str, refusals: Refusals
) -> dict[str, Any]:
    """The records of `reads` (this shard's share of one sweep) -> `<run>/fetch/<name>/shard-<n>.parquet`;
    a per-account read refused for an account not CONNECTED is no data for it (insightiq_reads.Refusals)."""

    def read_records(read: plan.Read):
        account_id = read.params.get("account_id")
        if not account_id:
            return records(hook, read)
        return refusals.read(read.resource, account_id, lambda: records(hook, read))

    rows = (
        record
        for read in track(reads, f"shard {shard}: {name}", unit="accounts", gauges=client_requests(hook))
        for record in read_records(read)
    )
    path = storage.ensure_dir(run.dir / "fetch" / name) / f"shard-{shard}.parquet"
    return {"path": str(path), "count": files.write_records_parquet(rows, path)}


def fetch_income_sweep(hook: InsightIQHook, run: SyncRun, shard: int, of: int, base: Meta) -> dict[str, Any]:
    """Shard `shard` of `of` of the income accounts due in this hour's sweep: their transactions and payouts
    since their previous sweep -> `<run>/fetch/transactions_sweep/` and `<run>/fetch/payouts_sweep/`
    (`shard-<shard>.parquet`). Scheduled runs read no audience (creator_sync.sync.targeted_fetch) and no
    accounts list (the directory sweep does)."""
    reads = planned_reads(run, base, hook)

    def due(resource: str) -> list[plan.Read]:
        return [r for r in reads if r.resource == resource and r.purpose == "sweep"][shard::of]

    mine = due("social_transactions")
    refused = Refusals((), lookup=lambda account_id: hook.get_record("accounts", account_id))
    result = {
        "shard": shard,
        "mode": modes.SWEEP,
        "snapshot": base.version,
        "income_accounts_due": len(mine),
        SWEEP_DIR: _sweep_file(hook, run, mine, shard, SWEEP_DIR, refused),
        PAYOUTS_SWEEP_DIR: _sweep_file(hook, run, due("social_payouts"), shard, PAYOUTS_SWEEP_DIR, refused),
    }
    contents_due = due("contents")
    if contents_due:  # contents read per account (creator_sync.sync.contents_read)
        result["contents_accounts_due"] = len(contents_due)
        result[CONTENTS_SWEEP_DIR] = _sweep_file(hook, run, contents_due, shard, CONTENTS_SWEEP_DIR, refused)
    result["refused"] = note_refused(refused, run.dir / "fetch", f"sweep-{shard}")
    result["requests"] = dict(hook.stats)
    return result


def _parquet_files(directory) -> list:
    if storage.is_local(directory):
        local = storage.local_path(directory)
        return sorted(local.rglob("*.parquet")) if local.exists() else []
    return sorted((p for p in directory.rglob("*.parquet") if p.is_file()), key=str)


def read_tables(directory, skip: tuple[str, ...] = ()) -> pa.Table:
    """Every Parquet file under `directory` (but those named in `skip`) as one table (empty when none)."""
    tables = []
    for path in _parquet_files(directory):
        if path.name in skip:
            continue
        with files.open_input(path) as fh:
            tables.append(pq.read_table(fh))
    return files.concat_tables(tables)


def _contents_per_day(run: SyncRun) -> int:
    """Contents listed per day by this run (the planner's estimate only)."""
    rows = 0
    for path in _parquet_files(run.dir / "fetch" / "contents"):
        with files.open_input(path) as fh:
            rows += pq.ParquetFile(fh).metadata.num_rows
    from_date, to_date = plan.day_range(run.events_from, run.end)
    days = (datetime.fromisoformat(to_date) - datetime.fromisoformat(from_date)).days + 1
    return rows // max(1, days)


def owners(reads: dict[str, pa.Table]) -> set[str]:
    """The InsightIQ user ids a targeted read touched: its users and the owners of its profiles/accounts."""
    ids: set[str] = set()
    for part, table in reads.items():
        column = OWNER_COLUMN[part]
        if column in table.column_names:
            ids.update(str(v) for v in table.column(column).to_pylist() if v not in (None, ""))
    return ids


def _owned(batch: pa.Table, part: str, touched: set[str], read: pa.Table) -> tuple[pa.Array, pa.Array]:
    """Masks of `batch`'s rows: owned by a creator the run touched; re-read by the run (id in `read`). The
    second does not depend on owners: a re-read row without one is tapped too (its status columns)."""
    none = pa.array(np.zeros(batch.num_rows, dtype=bool))
    column, mine = OWNER_COLUMN[part], none
    if touched and column in batch.column_names:
        owner = pc.cast(batch.column(column), pa.string())
        mine = pc.fill_null(pc.is_in(owner, value_set=pa.array(sorted(touched))), False)
    if KEY not in batch.column_names or KEY not in read.column_names:
        return mine, none
    ids, read_ids = pc.cast(batch.column(KEY), pa.string()), pc.cast(read.column(KEY), pa.string())
    return mine, pc.fill_null(pc.is_in(ids, value_set=read_ids), False)


def _tap(batches, pick, into: list[pa.Table]):
    """`batches` as they are, appending each one's rows `pick` selects to `into`."""
    for batch in batches:
        into.append(batch.filter(pick(batch)))
        yield batch


def _complete_owners(fetched, part: str, tapped: list[pa.Table], touched: set[str], read: pa.Table) -> None:
    """A targeted run reads only its accounts, but a creator's attributes are built from ALL their profiles
    (platform counts summed, personal fields from the newest profile: creator_sync.pipeline.creators). So
    for every creator the run touched, the snapshot's rows of their other accounts and profiles (and their
    user row, if not re-read) are written beside the run's reads (`<part>/OWNERS_FILE`); without them the run
    would send sums over the re-read accounts only. `tapped`: the merged rows the run touched or re-read
    (`_owned`, taken while the merge streams). Derived from the run's own reads (never from an earlier
    attempt's file), so a retried transform writes the same file."""
    merged = files.concat_tables(tapped)
    mine, fresh = _owned(merged, part, touched, read)
    _write_table(
        merged.filter(pc.and_(mine, pc.invert(fresh))), storage.ensure_dir(fetched / part) / OWNERS_FILE
    )


def _add_vanished(run: SyncRun, fetched, before: pa.Table | None, reads: dict[str, pa.Table]) -> None:
    """A targeted run's accounts InsightIQ answered 404 for (deleted) join its account reads as NOT_CONNECTED
    (account_status.vanished), written beside them (`accounts/VANISHED_FILE`) for the transform: the run
    sends their account_disconnected and clears their platforms' attributes. Derived from the run's own
    reads and the snapshot it starts from, so a retried transform writes the same file."""
    gone = account_status.vanished(before, reads["accounts"], run.account_ids)
    if gone is None:
        return
    log.warning("%d account(s) of the run are gone at InsightIQ: taken as disconnected", gone.num_rows)
    _write_table(gone, storage.ensure_dir(fetched / "accounts") / VANISHED_FILE)
    reads["accounts"] = files.concat_tables([reads["accounts"], gone])


def _text(values) -> pa.ChunkedArray:
    return pc.cast(values, pa.string())


def _write_table(table: pa.Table, path) -> None:
    with files.open_output(path, "wb") as fh:
        pq.write_table(table, fh)


def _derived(merge: StreamMerge, window: tuple[datetime, datetime]):
    """The merged accounts with account_status's DERIVED columns, batch by batch: a kept row's snapshot row
    is itself (the snapshot holds one row per id), a re-read row's is the row it replaces (`replaced`)."""
    for batch in merge.kept():
        yield account_status.derive(batch, batch, window)
    fresh = merge.fresh()
    if fresh is None:
        return
    if merge.replaced:
        replaced = files.concat_tables(merge.replaced)
    else:  # no re-read row replaces one: an empty snapshot part (its columns), or none at all
        replaced = merge.old_schema.empty_table() if merge.old_schema is not None else None
    yield account_status.derive(replaced, fresh, window, snapshot_rows=merge.old_rows)


def _merged(store: SnapshotStore, base: Meta, reads, window) -> dict[str, Any]:
    """Each part's re-read rows (`reads[part]`: a table, or a function that reads it when the part's turn
    comes, so one part's reads are held at a time) merged onto `base` as a stream (accounts: with the
    DERIVED columns)."""

    def stream(part: str):
        new = reads[part]() if callable(reads[part]) else reads[part]
        if part != "accounts":
            yield from store.merged(base, part, new)
            return
        columns = account_status.BASE_COLUMNS
        yield from _derived(store.merged(base, part, new, replaced_columns=columns), window)

    return {part: stream(part) for part in PARTS}


def _write_sweep(run: SyncRun, store: SnapshotStore, base: Meta, window) -> Meta:
    """An incremental run: the re-read rows merged onto the snapshot, streamed into the new snapshot version
    and into the run's fetch files at once."""
    reads = {part: lambda part=part: read_tables(run.dir / READS_DIR / part) for part in PARTS}
    copies = {part: storage.ensure_dir(run.dir / "fetch" / part) / f"{part}.parquet" for part in PARTS}
    return store.write(
        run.run_id,
        base,
        _merged(store, base, reads, window),
        now=datetime.now(UTC),
        contents_per_day=_contents_per_day(run),
        copies=copies,
    )


def _base_rows(store: SnapshotStore, base: Meta, part: str, ids) -> pa.Table:
    """The snapshot's rows of `part` whose id is one of `ids` (streamed: only those are held)."""
    wanted = pa.array(sorted(set(ids)), pa.string())
    return files.concat_tables(
        batch.filter(pc.fill_null(pc.is_in(pc.cast(batch[KEY], pa.string()), value_set=wanted), False))
        for batch in store.batches(base, part)
        if KEY in batch.column_names
    )


def _write_targeted(run: SyncRun, store: SnapshotStore, base: Meta, window) -> Meta:
    """A targeted run: its reads merged onto the snapshot (streamed), the owners' other rows and the
    vanished accounts written beside its fetch files, whose accounts get the DERIVED columns."""
    fetched = run.dir / "fetch"
    reads = {part: read_tables(fetched / part, skip=(OWNERS_FILE, VANISHED_FILE)) for part in PARTS}
    _add_vanished(run, fetched, _base_rows(store, base, "accounts", run.account_ids), reads)
    touched = owners(reads)
    tapped: dict[str, list[pa.Table]] = {part: [] for part in PARTS}

    def pick(part):
        return lambda batch: pc.or_(*_owned(batch, part, touched, reads[part]))

    streams = _merged(store, base, reads, window)
    streams = {part: _tap(streams[part], pick(part), tapped[part]) for part in PARTS}
    meta = store.write(
        run.run_id, base, streams, now=datetime.now(UTC), contents_per_day=base.contents_per_day
    )
    for part in PARTS:
        _complete_owners(fetched, part, tapped[part], touched, reads[part])
    account_status.annotate(_parquet_files(fetched / "accounts"), files.concat_tables(tapped["accounts"]))
    return meta


def _write_full(run: SyncRun, store: SnapshotStore, base: Meta | None, window) -> Meta:
    """A full read: the run's fetched directory becomes the snapshot, one row per id (the last read wins),
    streamed batch by batch (creator_sync.sync.full_directory): the streaming merges of the next runs date a
    kept row's status from that row alone, which is the whole-table merge's dating only while every stored
    id is unique."""
    fetched = run.dir / "fetch"
    return full_directory.write(
        store,
        run.run_id,
        base,
        {part: _parquet_files(fetched / part) for part in PARTS},
        window,
        now=datetime.now(UTC),
        contents_per_day=_contents_per_day(run),
    )


def complete_directory(run: SyncRun, store: SnapshotStore | None = None) -> dict[str, Any]:
    """The run's directory and the snapshot after its fetch (see the module doc); returns what was done."""
    store = store or SnapshotStore()
    kind, base = directory_kind(run, store)
    if kind == modes.BACKFILL:
        return {"kind": kind, "snapshot": None}
    if kind == modes.TARGETED and base is None:
        log.info("snapshot: none yet; this targeted run's accounts go into the first full read's snapshot")
        return {"kind": kind, "snapshot": None}
    if base is not None:  # the directory step needs its version, not its income account ids (millions)
        base = dataclasses.replace(base, income_accounts=())
    window = (run.events_from, run.end)
    write = {modes.SWEEP: _write_sweep, modes.TARGETED: _write_targeted}.get(kind, _write_full)
    meta = write(run, store, base, window)
    log.info("snapshot %s (%s run, on %s): %s", meta.version, kind, meta.base, meta.sizes)
    return {"kind": kind, "snapshot": meta.version, "sizes": meta.sizes}
