"""The directory snapshot store (creator_sync.sync.snapshot) and the fetch mode switch
(creator_sync.sync.fetch_mode): versions are read only once complete, a re-read row wins by id, an invalid
CREATOR_SYNC_FETCH_MODE fails clearly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.files import flatten_records
from creator_sync.sync import fetch_mode as modes
from creator_sync.sync import incremental_fetch, snapshot
from creator_sync.sync.run_context import SyncRun
from creator_sync.sync.snapshot import SnapshotStore

NOW = datetime(2026, 3, 2, 5, tzinfo=UTC)


def user(i: int, name: str = "u") -> dict:
    return {"id": f"u{i}", "name": f"{name}{i}"}


def account(i: int, income: str = "NOT_SUPPORTED") -> dict:
    return {"id": f"a{i}", "user": {"id": f"u{i}"}, "data": {"income": {"status": income}}}


def profile(i: int, followers: int) -> dict:
    return {"id": f"p{i}", "user": {"id": f"u{i}"}, "reputation": {"follower_count": followers}}


def tables(users, profiles, accounts) -> dict[str, pa.Table]:
    return {
        "users": flatten_records(users),
        "profiles": flatten_records(profiles),
        "accounts": flatten_records(accounts),
    }


def fleet(n: int = 5, followers: int = 10) -> dict[str, pa.Table]:
    return tables(
        [user(i) for i in range(n)],
        [profile(i, followers) for i in range(n)],
        [account(i, "SYNCED" if i % 2 else "NOT_SUPPORTED") for i in range(n)],
    )


# -- the store -----------------------------------------------------------------------------------------
def test_a_written_version_is_current_with_the_planners_figures(tmp_path):
    store = SnapshotStore(tmp_path)
    assert store.current() is None
    meta = store.write("scheduled__1", None, fleet(5), now=NOW, full_read=snapshot.PARTS, contents_per_day=7)
    assert store.current() == meta
    assert meta.sizes == {"users": 5, "profiles": 5, "accounts": 5}
    assert meta.income_accounts == ("a1", "a3")  # SYNCED ones, sorted
    assert meta.full_read_at == dict.fromkeys(snapshot.PARTS, NOW.isoformat())
    planner = meta.planner_snapshot()
    assert (planner.users, planner.accounts, planner.profiles, planner.contents_per_day) == (5, 5, 5, 7)
    assert store.read(meta, "users")["name"].to_pylist() == [f"u{i}" for i in range(5)]


def test_a_failure_while_writing_leaves_the_previous_version_in_force(tmp_path, monkeypatch):
    store = SnapshotStore(tmp_path)
    first = store.write("scheduled__1", None, fleet(3, followers=1), now=NOW, full_read=snapshot.PARTS)
    real = snapshot.pq.ParquetWriter
    opened = []

    def failing(where, schema, *args, **kwargs):
        if opened:  # the first part is written, the second fails
            raise OSError("disk full")
        opened.append(where)
        return real(where, schema, *args, **kwargs)

    monkeypatch.setattr(snapshot.pq, "ParquetWriter", failing)
    with pytest.raises(OSError, match="disk full"):
        store.write("scheduled__2", first, fleet(4, followers=2), now=NOW + timedelta(hours=1))
    monkeypatch.setattr(snapshot.pq, "ParquetWriter", real)

    # the half-written version is on disk, and the reader still gets the complete previous one
    half = [v for v in store.versions() if v != first.version]
    assert len(half) == 1 and (tmp_path / "snapshot" / half[0] / "users.parquet").exists()
    assert not (tmp_path / "snapshot" / half[0] / "meta.json").exists()
    assert store.current() == first
    assert store.read(store.current(), "profiles")["reputation.follower_count"].to_pylist() == [1, 1, 1]

    # the next successful write is in force and removes the half-written directory
    third = store.write("scheduled__3", first, fleet(4, followers=3), now=NOW + timedelta(hours=2))
    assert store.current() == third and set(store.versions()) == {first.version, third.version}


def test_a_retried_run_starts_again_from_its_base(tmp_path):
    store = SnapshotStore(tmp_path)
    first = store.write("scheduled__1", None, fleet(2), now=NOW, full_read=snapshot.PARTS)
    second = store.write("scheduled__2", first, fleet(3), now=NOW)
    assert store.base_for("scheduled__3") == second  # another run: the current version
    assert store.base_for("scheduled__2") == first  # the run that wrote it: its base (same merge on retry)
    assert store.base_for("scheduled__1") == second


# -- merging -------------------------------------------------------------------------------------------
def test_a_re_read_row_wins_by_id_and_new_rows_are_added():
    old = flatten_records([profile(0, 1), profile(1, 1), profile(2, 1)])
    new = flatten_records([profile(1, 5), {"id": "p9", "user": {"id": "u9"}}, profile(1, 6)])
    merged = snapshot.merge(old, new)
    by_id = dict(zip(merged["id"].to_pylist(), merged["reputation.follower_count"].to_pylist(), strict=True))
    assert by_id == {"p0": 1, "p2": 1, "p1": 6, "p9": None}  # the last read of p1 wins; p9 is new
    assert snapshot.merge(old, flatten_records([{"x": 1}]).slice(0, 0)) == old  # nothing re-read


def test_rows_without_their_ids_are_not_stored(tmp_path):
    store = SnapshotStore(tmp_path)
    data = fleet(2)
    data["profiles"] = flatten_records([profile(0, 1), {"id": "p7", "reputation": {"follower_count": 2}}])
    data["users"] = flatten_records([user(0), {"name": "no id"}])
    meta = store.write("scheduled__1", None, data, now=NOW, full_read=snapshot.PARTS)
    assert meta.sizes == {"users": 1, "profiles": 1, "accounts": 2}


# -- the mode switch -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "mode"), [(None, "incremental"), ("", "incremental"), ("full", "full"), (" FULL ", "full")]
)
def test_the_fetch_mode_setting(raw, mode):
    environ = {} if raw is None else {modes.FETCH_MODE_ENV: raw}
    assert modes.fetch_mode(environ) == mode


def test_an_invalid_fetch_mode_names_the_variable_the_value_and_the_allowed_ones():
    with pytest.raises(CreatorSyncConfigError) as error:
        modes.fetch_mode({modes.FETCH_MODE_ENV: "incrementel"})
    message = str(error.value)
    assert "CREATOR_SYNC_FETCH_MODE='incrementel'" in message
    assert "incremental" in message and "full" in message


@pytest.mark.parametrize(
    ("run_type", "accounts", "has_snapshot", "mode", "kind"),
    [
        ("scheduled", (), True, "incremental", "incremental"),
        ("scheduled", (), False, "incremental", "full"),  # no snapshot yet: a full read writes it
        ("scheduled", (), True, "full", "full"),
        ("manual", (), True, "incremental", "full"),  # an operator's interval: read in full
        ("manual", ("a1",), True, "incremental", "targeted"),
        ("backfill", (), True, "incremental", "backfill"),
    ],
)
def test_what_a_run_reads(run_type, accounts, has_snapshot, mode, kind):
    assert modes.run_kind(run_type, accounts, has_snapshot, mode) == kind


def test_an_invalid_mode_fails_every_run_kind(tmp_path, monkeypatch):
    monkeypatch.setenv(modes.FETCH_MODE_ENV, "sometimes")
    run = SyncRun("manual__1", NOW, NOW + timedelta(hours=1), False, False, (), 0, "manual")
    with pytest.raises(CreatorSyncConfigError, match="CREATOR_SYNC_FETCH_MODE"):
        incremental_fetch.directory_kind(run, SnapshotStore(tmp_path))


def test_the_sweep_cursor_is_the_intervals_hours_since_the_epoch():
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    run = SyncRun(
        "scheduled__1", midnight + timedelta(hours=5), midnight + timedelta(hours=6), False, False, ()
    )
    assert incremental_fetch.sweep_hour(run) % 24 == 5
    # the income sweep reads whole days from the day 7 days before the run's end
    assert incremental_fetch.income_sweep_from(run) == midnight - timedelta(days=7)
