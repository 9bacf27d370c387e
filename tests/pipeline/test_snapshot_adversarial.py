"""Chosen inputs against the streaming snapshot merge (creator_sync.sync.incremental_fetch's sweep and
targeted runs over creator_sync.sync.snapshot.StreamMerge): what a run stores and hands the transform
equals the whole-table merge (`snapshot.merge`, `account_status.derive` over the whole stored part),
whatever the batch boundaries, and a status that does not change keeps its `status_since` (so its account
event is not sent again)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creator_sync import files
from creator_sync.sync import account_status, full_directory, incremental_fetch, snapshot
from creator_sync.sync.insightiq_reads import INCOME_SYNCED
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.snapshot import SnapshotStore

H = datetime(2026, 3, 2, 10, tzinfo=UTC)
DATA_URL = "CREATOR_SYNC_DATA_URL"


def account(account_id, status="CONNECTED", updated="2026-02-01T00:00:00Z", **fields) -> dict:
    return {
        "id": account_id,
        "user": {"id": "u1"},
        "status": status,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": updated,
        **fields,
    }


def small_batches(monkeypatch, rows: int) -> None:
    """The stored parts are read `rows` rows at a time (row groups alone do not split pyarrow's batches)."""
    real = SnapshotStore.batches
    monkeypatch.setattr(
        SnapshotStore, "batches", lambda self, meta, part, batch_rows=rows: real(self, meta, part, rows)
    )


def write_shards(directory, part: str, shards) -> None:
    (directory / part).mkdir(parents=True, exist_ok=True)
    for i, records in enumerate(shards):
        files.write_records_parquet(records, directory / part / f"shard-{i}.parquet")


def full_read(accounts_shards, run_id: str = "manual__full") -> SyncRun:
    """A manual run reading the whole directory (accounts in shards: paging can read a record twice)."""
    run = SyncRun(run_id, H - timedelta(hours=1), H, False, False, (), 0, "manual")
    write_shards(run.dir / "fetch", "users", [[{"id": "u1"}]])
    write_shards(run.dir / "fetch", "profiles", [[]])
    write_shards(run.dir / "fetch", "accounts", accounts_shards)
    incremental_fetch.complete_directory(run)
    return run


def sweep(hour: int, accounts) -> SyncRun:
    """A scheduled (incremental) run whose directory sweep re-read `accounts`."""
    start = H + timedelta(hours=hour)
    run = SyncRun(f"scheduled__{hour}", start, start + timedelta(hours=1), False, False, (), 0, "scheduled")
    reads = run.dir / incremental_fetch.READS_DIR
    write_shards(reads, "users", [[]])
    write_shards(reads, "profiles", [[]])
    write_shards(reads, "accounts", [accounts])
    (run.dir / "fetch").mkdir(parents=True, exist_ok=True)
    incremental_fetch.complete_directory(run)
    return run


def stored_accounts() -> pa.Table:
    store = SnapshotStore()
    return store.read(store.current(), "accounts")


def rows_of(table: pa.Table, account_id: str) -> list[dict]:
    return [r for r in table.to_pylist() if r["id"] == account_id]


@pytest.mark.parametrize("batch_rows", [1, 2, snapshot.BATCH_ROWS])
def test_an_account_read_twice_by_a_full_read_keeps_its_status_since_in_the_sweeps(
    local_sync_store, monkeypatch, batch_rows
):
    """Offset paging reads account a twice (connected, then disconnected): the snapshot keeps its last read
    only, and sweeps that do not re-read it keep its status_since, so its account_disconnected is one event
    (with two rows of a stored, the whole-table merge re-dates one of them into every run's window, the
    stream only when both rows share a batch)."""
    small_batches(monkeypatch, batch_rows)
    full_read([[account("a"), account("b")], [account("a", "NOT_CONNECTED", "2026-02-02T00:00:00Z")]])
    stored = rows_of(stored_accounts(), "a")
    assert [r["status"] for r in stored] == ["NOT_CONNECTED"]
    first = stored[0]
    assert SnapshotStore().current().sizes["accounts"] == 2
    since = first["status_since.not_connected"]
    for hour in (1, 2):
        run = sweep(hour, [account("c", updated=(H + timedelta(hours=hour)).isoformat())])
        assert [r["status_since.not_connected"] for r in rows_of(stored_accounts(), "a")] == [since]
        sent = incremental_fetch.read_tables(run.dir / "fetch" / "accounts")
        assert [r["status_since.not_connected"] for r in rows_of(sent, "a")] == [since]
    assert SnapshotStore().current().sizes["accounts"] == 3


def income(status) -> dict:
    return {"data": {"income": {"status": status}}}


STATUSES = st.sampled_from(["CONNECTED", "NOT_CONNECTED", "SESSION_EXPIRED"])
TIMES = st.sampled_from(["2026-01-01T00:00:00Z", "2026-03-02T10:30:00Z", "2026-03-02T12:30:00Z"])
INCOME = st.sampled_from([None, "SYNCED", "PARTIAL_SYNCED", "NOT_SUPPORTED"])


@st.composite
def accounts(draw, max_size: int = 5) -> list[dict]:
    """Accounts with few ids (so duplicates are common; some without an id or a user id: not stored), any
    status and income status, moving updated_at."""
    rows = []
    for _ in range(draw(st.integers(0, max_size))):
        row = account(draw(st.sampled_from(["a", "b", "c", "d", None])), draw(STATUSES), draw(TIMES))
        row["user"]["id"] = draw(st.sampled_from(["u1", "u1", None]))
        rows.append({**row, **income(draw(INCOME))})
    return rows


@dataclass
class Merged:
    stored: pa.Table  # the accounts the sweep stored
    sent: pa.Table  # the sweep's accounts fetch files (the transform's input)
    meta: snapshot.Meta
    whole: pa.Table  # the whole-table merge of the same (account_status.derive over the whole stored part)


def sweep_against_whole(shards, reread, batch_rows, monkeypatch) -> Merged:
    """A full read of `shards`, then a sweep re-reading `reread` (the stored parts read `batch_rows` at a
    time)."""
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setenv(DATA_URL, f"file://{tmp}")
        small_batches(monkeypatch, batch_rows)
        full_read(shards)
        before = stored_accounts()
        run = sweep(1, reread)
        new = incremental_fetch.read_tables(run.dir / incremental_fetch.READS_DIR / "accounts")
        whole = account_status.derive(before, snapshot.merge(before, new), (run.events_from, run.end))
        sent = incremental_fetch.read_tables(run.dir / "fetch" / "accounts")
        return Merged(stored_accounts(), sent, SnapshotStore().current(), whole)


def same(got: pa.Table, want: pa.Table) -> bool:
    return got.num_rows == want.num_rows == 0 or got.equals(want)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    shards=st.lists(accounts(), min_size=1, max_size=3),
    reread=accounts(3),
    batch_rows=st.integers(1, 3),
)
def test_a_sweep_after_a_full_read_stores_the_whole_table_merge(
    local_sync_store, monkeypatch, shards, reread, batch_rows
):
    """Whatever a full read's shards repeat and wherever the batches split the stored part, the sweep stores
    one row per id and exactly the whole-table merge (rows, order, status columns), hands the transform all
    of it (the rows without an id or user id too), and its meta.json counts the stored rows and lists each
    income-synced stored account once, sorted."""
    with monkeypatch.context() as patch:
        got = sweep_against_whole(shards, reread, batch_rows, patch)
    ids = got.stored["id"].to_pylist() if got.stored.num_rows else []
    assert len(ids) == len(set(ids))
    assert same(got.stored, snapshot.storable("accounts", got.whole))
    assert same(got.sent, got.whole)
    assert got.meta.sizes["accounts"] == got.stored.num_rows
    statuses = got.stored[snapshot.INCOME_STATUS].to_pylist() if got.stored.num_rows else []
    synced = {i for i, s in zip(ids, statuses, strict=True) if s in INCOME_SYNCED}
    assert got.meta.income_accounts == tuple(sorted(synced))


def test_the_whole_table_property_fails_when_a_full_read_stores_repeated_ids(local_sync_store, monkeypatch):
    """Guard off: a full read storing every row it read (no last row per id) breaks the property above."""
    shards = [[account("a"), account("b")], [account("a", "NOT_CONNECTED", "2026-01-01T00:00:00Z")]]
    with monkeypatch.context() as patch:
        got = sweep_against_whole(shards, [], 1, patch)
    assert got.stored.equals(snapshot.storable("accounts", got.whole))
    every_row = lambda ids: (np.ones(len(ids), dtype=bool), np.arange(len(ids)))  # noqa: E731
    monkeypatch.setattr(full_directory, "last_reads", every_row)
    with monkeypatch.context() as patch:
        got = sweep_against_whole(shards, [], 1, patch)
    assert got.stored["id"].to_pylist().count("a") == 2
    assert not got.stored.equals(snapshot.storable("accounts", got.whole))


def test_a_full_read_without_any_income_status_is_stored_and_sweeps_follow_income_changes(local_sync_store):
    """No account of the full read has an income status (the column reads back as float, not text): the
    snapshot is written all the same, and the sweeps' income account ids follow accounts gaining and losing
    income (sorted, each once)."""
    full_read([[account("a", **income(None)), account("b")]])
    assert SnapshotStore().current().income_accounts == ()
    sweep(1, [account("b", **income("SYNCED")), account("c", **income("PARTIAL_SYNCED"))])
    assert SnapshotStore().current().income_accounts == ("b", "c")
    sweep(2, [account("b", **income("NOT_SUPPORTED")), account("a", **income("SYNCED"))])
    assert SnapshotStore().current().income_accounts == ("a", "c")
    assert SnapshotStore().current().sizes["accounts"] == 3


@pytest.mark.parametrize("column", [pa.nulls(2), pa.array([None, float("nan")]), pa.array([1, 2])])
def test_income_account_ids_of_a_status_column_that_is_not_text(column):
    accounts = pa.table({"id": ["a", "b"], snapshot.INCOME_STATUS: column})
    assert snapshot.income_accounts(accounts) == ()
    synced = pa.table(
        {"id": ["b", "a"], snapshot.INCOME_STATUS: pa.array(["SYNCED", None]).dictionary_encode()}
    )
    assert snapshot.income_accounts(synced) == ("b",)


@pytest.mark.parametrize(
    "column, due",
    [
        (pa.array([None, None], pa.float64()), ("a", "b")),  # no account has an engagement status
        (pa.nulls(2), ("a", "b")),
        (pa.array(["NOT_SUPPORTED", None]).dictionary_encode(), ("b",)),
        (pa.array(["NOT_SUPPORTED", "SUPPORTED"]), ("b",)),
    ],
)
def test_the_contents_sweep_accounts_of_an_engagement_status_column_that_is_not_text(column, due):
    """The per-account contents sweep reads the snapshot's accounts whatever type their engagement status
    column came back as (all null: float), instead of failing every account shard of the run."""
    accounts = pa.table({"id": ["a", "b"], incremental_fetch.ENGAGEMENT_STATUS: column})
    assert incremental_fetch.contents_accounts(accounts) == due


def targeted(hour: int, asked, accounts) -> SyncRun:
    """A webhook-triggered run of the accounts `asked`: GET answered `accounts` (an asked account it lacks
    answered 404: account_status.vanished)."""
    start = H + timedelta(hours=hour)
    run = SyncRun(
        f"insightiq_webhook__{hour}", start, start + timedelta(hours=1), False, False, asked, 0, "manual"
    )
    write_shards(run.dir / "fetch", "users", [[]])
    write_shards(run.dir / "fetch", "profiles", [[]])
    write_shards(run.dir / "fetch", "accounts", [accounts])
    incremental_fetch.complete_directory(run)
    return run


def by_id(table: pa.Table) -> dict[str, tuple]:
    rows = table.select(["id", "status", "status_since"]).to_pylist() if table.num_rows else []
    return {r["id"]: (r["status"], r["status_since"]) for r in rows}


@st.composite
def runs(draw) -> list[tuple]:
    """Sweeps and targeted runs (their GETs answer some of the asked accounts, re-read as drawn)."""
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            steps.append(("sweep", (), draw(accounts(3))))
            continue
        asked = tuple(
            draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=2, unique=True))
        )
        answered = [a for a in draw(accounts(3)) if a["id"] in asked]
        steps.append(("targeted", asked, answered))
    return steps


def check_step(before: dict, after: pa.Table, asked, reread: list[dict], window) -> None:
    """The invariants of one run's merge (see the property below)."""
    store = SnapshotStore()
    meta = store.current()
    ids = after["id"].to_pylist() if after.num_rows else []
    assert len(ids) == len(set(ids)) == meta.sizes["accounts"]
    has_income = snapshot.INCOME_STATUS in after.column_names
    statuses = after[snapshot.INCOME_STATUS].to_pylist() if has_income else [None] * len(ids)
    assert meta.income_accounts == tuple(
        sorted(i for i, s in zip(ids, statuses, strict=True) if s in INCOME_SYNCED)
    )
    read = {r["id"] for r in reread} | set(asked)
    for account_id, (status, since) in by_id(after).items():
        old = before.get(account_id)
        if account_id not in read:
            assert (status, since) == old, f"{account_id}: not read, changed"
        elif old is not None and status == old[0] and status is not None and old[1] is not None:
            assert since == old[1], f"{account_id}: re-read with its status, moved"
        elif old is not None and status is not None:
            assert window[0] <= since < window[1], f"{account_id}: changed, dated outside the window"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(shards=st.lists(accounts(), min_size=1, max_size=2), steps=runs(), batch_rows=st.integers(1, 3))
def test_sweeps_and_targeted_runs_keep_one_row_per_account_and_move_status_since_only_on_a_change(
    local_sync_store, monkeypatch, shards, steps, batch_rows
):
    """After a full read, any sequence of sweeps and targeted runs (batches of 1 to 3 stored rows) stores one
    row per account with meta.json's size and income ids matching, leaves an account no run read as it was,
    keeps the status_since of one re-read with its status, and dates a changed status in the run's window."""
    with monkeypatch.context() as patch, tempfile.TemporaryDirectory() as tmp:
        patch.setenv(DATA_URL, f"file://{tmp}")
        small_batches(patch, batch_rows)
        full_read(shards)
        run_steps(steps)


def run_steps(steps) -> None:
    for hour, (kind, asked, reread) in enumerate(steps, start=1):
        before = by_id(stored_accounts())
        run = sweep(hour, reread) if kind == "sweep" else targeted(hour, asked, reread)
        check_step(before, stored_accounts(), asked, reread, (run.events_from, run.end))


def test_the_run_invariants_fail_when_a_kept_account_is_dated_without_its_stored_row(
    local_sync_store, monkeypatch, tmp_path
):
    """Guard off: a merge that dates the kept accounts as if there were no snapshot moves the status_since
    of an account no run re-read (a disconnect dated by the previous run), and the invariants see it."""
    steps = [("sweep", (), [account("a", "NOT_CONNECTED")]), ("targeted", ("b",), [account("b")])]
    full_read([[account("a"), account("b")]])
    run_steps(steps)
    monkeypatch.setenv(DATA_URL, f"file://{tmp_path / 'guard-off'}")
    real = account_status.derive

    def undated(base, accounts, window, **kwargs):
        return real(None if base is accounts else base, accounts, window, **kwargs)

    monkeypatch.setattr(account_status, "derive", undated)
    full_read([[account("a"), account("b")]], run_id="manual__again")
    with pytest.raises(AssertionError, match="a: not read, changed"):
        run_steps(steps)


@pytest.mark.parametrize("user", [None, {"id": ""}, {"id": None}])
def test_a_targeted_runs_account_without_an_owner_gets_its_status_columns_as_in_the_whole_merge(
    local_sync_store, user
):
    """The GET answers the run's account without a user id (the transform reports the row): the run's
    account file still carries the status columns the whole-table merge gives it, though no creator owns
    it (the stream's rows for the status columns are taken by id, not by owner)."""
    full_read([[]])
    answered = account("a")
    if user is None:
        del answered["user"]
    else:
        answered["user"] = user
    run = targeted(1, ("a",), [answered])
    fetched = run.dir / "fetch" / "accounts"
    read = incremental_fetch.read_tables(fetched, skip=(incremental_fetch.OWNERS_FILE,))
    raw = read.drop_columns([c for c in account_status.DERIVED if c in read.column_names])
    whole = account_status.derive(None, raw, (run.events_from, run.end))
    names = list(account_status.DERIVED)
    assert read.select(names).equals(whole.select(names))
    assert read["status_since.connected"].to_pylist() == [datetime(2026, 1, 1, tzinfo=UTC)]
