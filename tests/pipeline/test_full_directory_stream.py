"""A full read's directory step streamed (creator_sync.sync.full_directory) gives what the whole-table step
gives (kept here as `whole_table_full_read`: each part read whole, `snapshot.last_per_id`, the snapshot's
missing accounts appended, `account_status.derive` over the whole table, each fetched accounts file rewritten
whole): the same stored version and meta, the same annotated accounts files, the same accounts queued."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync import files
from creator_sync.store import webhooks
from creator_sync.sync import account_status, full_directory, incremental_fetch, snapshot
from creator_sync.sync.snapshot import KEY, PARTS, SnapshotStore

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
WINDOW = (NOW - timedelta(hours=1), NOW)
IDS = st.sampled_from(["a", "b", "c", "d", None])
STATUSES = st.sampled_from([None, "CONNECTED", "NOT_CONNECTED", "SESSION_EXPIRED"])
TIMES = st.sampled_from(
    [None, "2026-01-01T00:00:00Z", "2026-03-02T09:30:00Z", "2026-03-02T12:00:00Z", "junk"]
)
INCOME = st.sampled_from([None, "SYNCED", "NOT_SUPPORTED"])


def annotate_whole(paths, derived: pa.Table) -> None:
    """The whole-file annotate: each file read whole, the DERIVED columns looked up by id, written whole."""
    ids = pc.cast(derived[KEY], pa.string())
    for path in paths:
        table = pq.read_table(path).replace_schema_metadata(None)
        if KEY not in table.column_names:
            continue
        table = table.drop_columns([c for c in account_status.DERIVED if c in table.column_names])
        at = pc.index_in(pc.cast(table[KEY], pa.string()), value_set=ids)
        for name in account_status.DERIVED:
            table = table.append_column(name, pc.take(derived[name], at))
        pq.write_table(table, path)


def whole_table_full_read(store: SnapshotStore, base, fetched: Path, queued: list) -> snapshot.Meta:
    """The reference: a full read's directory step over whole tables."""
    before = store.read(base, "accounts") if base is not None else None
    tables = {part: snapshot.last_per_id(incremental_fetch.read_tables(fetched / part)) for part in PARTS}
    accounts = tables["accounts"]
    missing = account_status.missing_from(before, accounts)
    if missing:
        kept = before.filter(pc.is_in(pc.cast(before[KEY], pa.string()), value_set=pa.array(missing)))
        status = kept["status"].to_pylist() if "status" in kept.column_names else [None] * kept.num_rows
        ask = [str(i) for i, s in zip(kept[KEY].to_pylist(), status, strict=True) if s != "NOT_CONNECTED"]
        queued.extend([ask] if ask else [])
        kept = kept.drop_columns([c for c in account_status.DERIVED if c in kept.column_names])
        accounts = files.concat_tables([accounts, kept])
    tables["accounts"] = account_status.derive(before, accounts, WINDOW)
    if KEY in tables["accounts"].column_names:
        annotate_whole(sorted((fetched / "accounts").glob("*.parquet")), tables["accounts"])
    return store.write("manual__full", base, tables, now=NOW, full_read=PARTS)


def account(draw) -> dict:
    row = {"id": draw(IDS), "user": {"id": draw(st.sampled_from(["u1", None]))}, "status": draw(STATUSES)}
    row.update(created_at=draw(TIMES), updated_at=draw(TIMES), data={"income": {"status": draw(INCOME)}})
    return row


@st.composite
def shards(draw, row, max_files: int = 3) -> list[list[dict]]:
    """A part's fetched files: 0-3 files of 0-4 records, ids repeated within and across files, records
    without an id, and files whose records have no id at all (a file without the column) or none."""
    out = []
    for _ in range(draw(st.integers(0, max_files))):
        records = [row(draw) for _ in range(draw(st.integers(0, 4)))]
        if draw(st.integers(0, 5)) == 0:
            records = [{k: v for k, v in r.items() if k != KEY} for r in records]
        out.append(records)
    return out


def user(draw) -> dict:
    return {"id": draw(IDS), "name": draw(st.sampled_from(["x", "y", None]))}


def profile(draw) -> dict:
    return {
        "id": draw(IDS),
        "user": {"id": draw(st.sampled_from(["u1", None]))},
        "n": draw(st.integers(0, 3)),
    }


@st.composite
def snapshots(draw) -> pa.Table | None:
    """The snapshot's accounts the read starts from (None: the first run): one row per id, some of them
    lacking in the read, some NOT_CONNECTED already (not queued), with or without status_since (a snapshot
    from before those columns)."""
    if draw(st.booleans()):
        return None
    rows = {}
    for _ in range(draw(st.integers(0, 6))):
        rows[draw(st.sampled_from(["a", "b", "e", "f"]))] = (draw(STATUSES), draw(TIMES), draw(INCOME))
    table = pa.table(
        {
            "id": pa.array(list(rows), pa.string()),
            "user.id": pa.array(["u1"] * len(rows), pa.string()),
            "status": pa.array([v[0] for v in rows.values()], pa.string()),
            "updated_at": pa.array([v[1] for v in rows.values()], pa.string()),
            "data.income.status": pa.array([v[2] for v in rows.values()], pa.string()),
            "old_only": pa.array([1] * len(rows), pa.int64()),
        }
    )
    table = account_status.derive(None, table, (WINDOW[0] - timedelta(days=1), WINDOW[0]))
    if draw(st.booleans()):
        table = table.drop_columns(list(account_status.DERIVED))
    return table


def write_fetched(root: Path, parts: dict) -> None:
    for part, part_shards in parts.items():
        (root / part).mkdir(parents=True, exist_ok=True)
        for i, records in enumerate(part_shards):
            files.write_records_parquet(records, root / part / f"shard-{i}.parquet")


def recording(queued: list):
    """A WebhookStore whose queue_accounts records the ids it is given."""

    class Queue:
        def __init__(self, engine):
            pass

        def queue_accounts(self, ids):
            queued.append(list(ids))

    return Queue


def run_both(tmp: Path, parts: dict, before: pa.Table | None, monkeypatch):
    """(reference meta, streamed meta, their stores, their fetched directories, their queued ids)."""
    results = []
    write_fetched(tmp / "fetched", parts)
    for name in ("whole", "stream"):
        store, fetched, queued = SnapshotStore(tmp / name), tmp / name / "fetch", []
        shutil.copytree(tmp / "fetched", fetched)
        base = None
        if before is not None:
            stored = {"users": pa.table({"id": ["u1"]}), "profiles": pa.table({}), "accounts": before}
            base = store.write("scheduled__0", None, stored, now=NOW - timedelta(hours=2), full_read=PARTS)

        monkeypatch.setattr(webhooks, "WebhookStore", recording(queued))
        monkeypatch.setattr(webhooks, "make_engine", lambda: None)
        if name == "whole":
            meta = whole_table_full_read(store, base, fetched, queued)
        else:
            paths = {part: sorted((fetched / part).glob("*.parquet")) for part in PARTS}
            meta = full_directory.write(
                store, "manual__full", base, paths, WINDOW, now=NOW, contents_per_day=0
            )
        results.append((meta, store, fetched, queued))
    return results


def small_batches(monkeypatch, rows: int) -> None:
    """Every part (fetched, stored, annotated) is read `rows` rows at a time."""
    monkeypatch.setattr(snapshot, "BATCH_ROWS", rows)
    real = SnapshotStore.batches
    monkeypatch.setattr(
        SnapshotStore, "batches", lambda self, meta, part, batch_rows=rows: real(self, meta, part, rows)
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    users=shards(user),
    profiles=shards(profile),
    accounts=shards(account),
    before=snapshots(),
    batch_rows=st.integers(1, 3),
)
def test_the_streamed_full_read_stores_and_annotates_what_the_whole_table_one_does(
    users, profiles, accounts, before, batch_rows, monkeypatch
):
    with monkeypatch.context() as patch, tempfile.TemporaryDirectory() as tmp:
        small_batches(patch, batch_rows)
        (want, want_store, want_dir, want_queued), (got, got_store, got_dir, got_queued) = run_both(
            Path(tmp), {"users": users, "profiles": profiles, "accounts": accounts}, before, patch
        )
        assert (got.sizes, got.income_accounts, got.full_read_at) == (
            want.sizes,
            want.income_accounts,
            want.full_read_at,
        )
        for part in PARTS:
            assert got_store.read(got, part).equals(want_store.read(want, part)), part
        for path in sorted((want_dir / "accounts").glob("*.parquet")):
            assert pq.read_table(got_dir / "accounts" / path.name).equals(pq.read_table(path)), path.name
        assert got_queued == want_queued


def test_a_full_read_reads_no_part_whole(tmp_path, monkeypatch):
    """The fetched files and the stored accounts are read in batches, or a few columns at a time (ids; the
    snapshot's id, status and status_since): with whole-table reads switched off the step still runs."""
    small_batches(monkeypatch, 2)
    monkeypatch.setattr(webhooks, "make_engine", lambda: None)
    queued = []
    monkeypatch.setattr(webhooks, "WebhookStore", recording(queued))
    store = SnapshotStore(tmp_path / "data")
    before = account_status.derive(None, pa.table({"id": ["a", "z"], "user.id": ["u1", "u1"]}), WINDOW)
    base = store.write(
        "scheduled__0", None, {"users": before, "profiles": before, "accounts": before}, now=NOW
    )
    rows = [{"id": i, "user": {"id": "u1"}, "status": "CONNECTED"} for i in ("a", "b", "a", "c", "d")]
    write_fetched(
        tmp_path / "fetch", {"users": [[{"id": "u1"}]], "profiles": [[]], "accounts": [rows[:3], rows[3:]]}
    )
    paths = {part: sorted((tmp_path / "fetch" / part).glob("*.parquet")) for part in PARTS}

    def by_columns(read):
        def guarded(*args, columns=None, **kwargs):
            assert columns is not None, "a part was read whole"
            return read(*args, columns=columns, **kwargs)

        return guarded

    with monkeypatch.context() as patch:
        patch.setattr(pq, "read_table", by_columns(pq.read_table))
        patch.setattr(pq.ParquetFile, "read", by_columns(pq.ParquetFile.read))
        got = full_directory.write(store, "manual__1", base, paths, WINDOW, now=NOW, contents_per_day=0)
        with pytest.raises(AssertionError, match="read whole"):
            pq.read_table(paths["accounts"][0])  # the switch is on
    assert got.sizes == {"users": 1, "profiles": 0, "accounts": 5}
    assert store.read(got, "accounts")["id"].to_pylist() == ["b", "a", "c", "d", "z"]
    assert queued == [["z"]]
    for path in paths["accounts"]:
        names = pq.read_table(path).column_names
        assert names[-len(account_status.DERIVED) :] == list(account_status.DERIVED)
