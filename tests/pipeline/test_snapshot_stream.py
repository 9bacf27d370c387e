"""The streaming snapshot merge (creator_sync.sync.snapshot.StreamMerge, SnapshotStore.write of streams) gives
what the whole-table merge gives: the same rows, the same schema, the same stored version and meta."""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync.sync import account_status, incremental_fetch, snapshot
from creator_sync.sync.insightiq_reads import INCOME_SYNCED
from creator_sync.sync.snapshot import SnapshotStore, StreamMerge

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
WINDOW = (NOW - timedelta(hours=1), NOW)
TYPES = {"int": pa.int64(), "str": pa.string(), "null": pa.null()}
EXTRA = ("x", "y")
IDS = st.one_of(st.none(), st.sampled_from([f"a{i}" for i in range(6)]))


def _value(kind: str):
    if kind == "int":
        return st.one_of(st.none(), st.integers(-5, 5))
    if kind == "str":
        return st.one_of(st.none(), st.sampled_from(["p", "q", ""]))
    return st.none()


@st.composite
def tables(draw, ids=IDS, unique: bool = False) -> pa.Table:
    """A part's table: an id column or not, a user id column or not, extra columns of drawn types (so two
    tables' column sets and types differ), duplicate and null ids, and 0 rows sometimes."""
    columns = {}
    if draw(st.booleans()) or unique:
        columns["id"] = "str"
    if draw(st.booleans()):
        columns["user.id"] = "str"
    if draw(st.booleans()):
        columns[snapshot.INCOME_STATUS] = "str"
    for name in EXTRA:
        if draw(st.booleans()):
            columns[name] = draw(st.sampled_from(sorted(TYPES)))
    n = draw(st.integers(0, 8))
    data = {}
    for name, kind in columns.items():
        if name == "id":
            values = draw(st.lists(ids, min_size=n, max_size=n, unique=unique))
        elif name == "user.id":
            values = draw(st.lists(st.sampled_from([None, "u1", "u2"]), min_size=n, max_size=n))
        elif name == snapshot.INCOME_STATUS:
            income = [None, "NOT_SUPPORTED", *sorted(INCOME_SYNCED)]
            values = draw(st.lists(st.sampled_from(income), min_size=n, max_size=n))
        else:
            values = draw(st.lists(_value(kind), min_size=n, max_size=n))
        data[name] = pa.array(values, TYPES[kind])
    return pa.table(data) if data else pa.table({"x": pa.array([None] * n, pa.int64())})


def stored(table: pa.Table, row_group: int) -> bytes:
    """`table` as a stored part (Parquet, `row_group` rows per row group)."""
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=max(1, row_group))
    return out.getvalue()


def streamed(data: bytes, new: pa.Table, batch_rows: int, replaced_columns=None) -> StreamMerge:
    parquet = pq.ParquetFile(io.BytesIO(data))
    batches = (
        pa.Table.from_batches([b]).replace_schema_metadata(None)
        for b in parquet.iter_batches(batch_size=batch_rows)
    )
    schema, rows = parquet.schema_arrow.remove_metadata(), parquet.metadata.num_rows
    return StreamMerge(schema, rows, batches, new, replaced_columns)


def whole(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data)).replace_schema_metadata(None)


def collect(stream) -> pa.Table:
    parts = list(stream)
    assert parts, "a merge stream yields at least one table (it carries the schema)"
    assert len({p.schema for p in parts}) == 1, "every table of a stream has one schema"
    return pa.concat_tables(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=tables(), new=tables(), row_group=st.integers(1, 4), batch_rows=st.integers(1, 3))
def test_the_streaming_merge_equals_the_whole_table_merge(old, new, row_group, batch_rows):
    data = stored(old, row_group)
    reference = snapshot.merge(whole(data), new)
    assert collect(streamed(data, new, batch_rows)).equals(reference)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(old=tables(), new=tables(), batch_rows=st.integers(1, 3), ids_per_chunk=st.integers(1, 3))
def test_a_streamed_write_stores_what_a_whole_write_stores(old, new, batch_rows, ids_per_chunk, monkeypatch):
    monkeypatch.setattr(snapshot, "IDS_PER_CHUNK", ids_per_chunk)
    data = stored(old, 2)
    reference = snapshot.merge(whole(data), new)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        want = SnapshotStore(root / "a").write(
            "scheduled__1", None, dict.fromkeys(snapshot.PARTS, reference), now=NOW
        )
        parts = {part: streamed(data, new, batch_rows) for part in snapshot.PARTS}
        copies = {part: root / f"{part}-copy.parquet" for part in snapshot.PARTS}
        store = SnapshotStore(root / "b")
        got = store.write("scheduled__1", None, parts, now=NOW, copies=copies)
        assert (got.sizes, got.income_accounts) == (want.sizes, want.income_accounts)
        assert store.current() == got  # meta.json (its ids written in chunks) reads back as written
        for part in snapshot.PARTS:
            assert store.read(got, part).equals(snapshot.storable(part, reference))
            assert whole(copies[part].read_bytes()).equals(reference)  # the run's files: every row


def account_rows(draw_ids):
    """Accounts with the columns account_status dates changes from (and a status_since on old ones)."""
    statuses = st.sampled_from([None, "CONNECTED", "NOT_CONNECTED", "SESSION_EXPIRED"])
    times = st.sampled_from([None, "2026-05-01T11:30:00Z", "2026-04-01T00:00:00Z", "junk"])
    return st.lists(st.tuples(draw_ids, statuses, times, times), max_size=8)


def accounts(rows, since: bool, unique: bool) -> pa.Table:
    if unique:
        rows = list({r[0]: r for r in rows if r[0] is not None}.values())
    table = pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.string()),
            "user.id": pa.array(["u1"] * len(rows), pa.string()),
            "status": pa.array([r[1] for r in rows], pa.string()),
            "created_at": pa.array([r[2] for r in rows], pa.string()),
            "updated_at": pa.array([r[3] for r in rows], pa.string()),
        }
    )
    if since:
        table = account_status.derive(None, table, WINDOW)
    return table


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=account_rows(IDS), new=account_rows(IDS), since=st.booleans(), batch_rows=st.integers(1, 3))
def test_the_streamed_status_columns_equal_those_of_the_whole_merge(old, new, since, batch_rows):
    """account_status.derive over the stream (each kept row's snapshot row is itself, a re-read row's the one
    it replaces) equals derive over the whole merge with the whole snapshot; the snapshot holds one row per
    id, so old ids are unique here."""
    before = accounts(old, since, unique=True)
    fresh = accounts(new, False, unique=False)
    data = stored(before, 2)
    reference = account_status.derive(whole(data), snapshot.merge(whole(data), fresh), WINDOW)
    merge = streamed(data, fresh, batch_rows, account_status.BASE_COLUMNS)
    got = collect(incremental_fetch._derived(merge, WINDOW))
    assert got.equals(reference)


def test_the_property_fails_when_the_stream_keeps_the_re_read_rows(monkeypatch):
    """Guard off: a stream that does not drop the old rows of re-read ids differs from the merge."""
    old = pa.table({"id": ["a0", "a1", "a2"], "x": [1, 2, 3]})
    new = pa.table({"id": ["a1"], "x": [9]})
    data = stored(old, 1)
    reference = snapshot.merge(whole(data), new)
    assert collect(streamed(data, new, 1)).equals(reference)
    monkeypatch.setattr(snapshot.pc, "is_in", lambda values, value_set: pa.nulls(len(values), pa.bool_()))
    assert not collect(streamed(data, new, 1)).equals(reference)


def test_the_sweep_merge_never_reads_the_stored_part_whole(tmp_path, monkeypatch):
    """The stored version is read in batches only: with pyarrow's whole-file read switched off the merge
    still runs, and the stored part never comes in one batch larger than BATCH_ROWS."""
    store = SnapshotStore(tmp_path)
    fleet = pa.table({"id": [f"a{i}" for i in range(10)], "user.id": [f"u{i}" for i in range(10)]})
    base = store.write("scheduled__1", None, dict.fromkeys(snapshot.PARTS, fleet), now=NOW)
    seen = []
    real = store.batches

    def counted(meta, part, batch_rows=snapshot.BATCH_ROWS):
        for batch in real(meta, part, batch_rows):
            seen.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(store, "batches", counted)

    def whole_read(*args, **kwargs):
        raise AssertionError("the stored part was read whole")

    monkeypatch.setattr(snapshot.pq, "read_table", whole_read)
    new = pa.table({"id": ["a3", "b1"], "user.id": ["u3", "u9"]})
    parts = {part: store.merged(base, part, new, batch_rows=3) for part in snapshot.PARTS}
    meta = store.write("scheduled__2", base, parts, now=NOW + timedelta(hours=1))
    assert meta.sizes == dict.fromkeys(snapshot.PARTS, 11)
    assert seen and max(seen) <= 3 and sum(seen) == 3 * 10
    with pytest.raises(AssertionError, match="read whole"):
        store.read(meta, "users")  # the switch is on: a whole read would have failed the merge
