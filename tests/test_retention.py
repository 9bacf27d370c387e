"""creator_sync_maintenance's retention on a local data directory and a SQLite state store."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.retention import DAG_ID, ledger_days, run_maintenance
from creator_sync.store import StateStore
from creator_sync.store.schema import acknowledged_events, dead_letters

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def age(path, days: float) -> None:
    stamp = (NOW - timedelta(days=days)).timestamp()
    for item in [path, *path.rglob("*")]:
        os.utime(item, (stamp, stamp))


@pytest.fixture
def store(tmp_path):
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def backdate(store, table, column, days: float, **where) -> None:
    cond = [getattr(table.c, k) == v for k, v in where.items()]
    with store.write() as conn:
        conn.execute(table.update().where(*cond).values({column: NOW - timedelta(days=days)}))


def test_old_run_files_ledger_rows_and_dead_letters_go_and_the_freed_amount_is_reported(
    tmp_path, store, monkeypatch
):
    for name in ("CREATOR_SYNC_RETAIN_RUN_FILES_DAYS", "CREATOR_SYNC_RETAIN_LEDGER_DAYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREATOR_SYNC_RETAIN_DEAD_LETTERS_DAYS", "30")
    root = tmp_path / "data"
    for run, days in (("scheduled__old", 15), ("scheduled__recent", 13), ("manual__mixed", 20)):
        (root / "runs" / run / "fetch").mkdir(parents=True)
        (root / "runs" / run / "fetch" / "users.parquet").write_bytes(b"x" * 1000)
        (root / "runs" / run / "report.md").write_text("r")
        age(root / "runs" / run, days)
    (root / "runs" / "manual__mixed" / "report.md").touch()  # written again just now: the run is in use
    os.utime(root / "runs" / "manual__mixed" / "report.md", (NOW.timestamp(), NOW.timestamp()))

    events = [(f"e{i}", f"u{i}") for i in range(5)]
    store.record_batch(run_id="r-old", batch_key="b-old", events=events[:3], hashes=[], failures=[])
    store.record_batch(run_id="r-new", batch_key="b-new", events=events[3:], hashes=[], failures=[])
    backdate(store, acknowledged_events, "acked_at", 91, batch_key="b-old")
    backdate(store, acknowledged_events, "acked_at", 89, batch_key="b-new")
    letters = [
        {"user_key": "u1", "reason": "malformed_email", "payload": {}},
        {"user_key": "u2", "reason": "malformed_email", "payload": {}},
        {"user_key": "u3", "reason": "vendor_rejected", "payload": {}},
    ]
    store.add_dead_letters("r-old", letters)
    store.add_dead_letters("r-new", letters[:1])
    backdate(store, dead_letters, "created_at", 31, run_id="r-old")
    backdate(store, dead_letters, "created_at", 29, run_id="r-new")

    result = run_maintenance("scheduled__2026-06-01", now=NOW, store=store, root=root)

    assert sorted(p.name for p in (root / "runs").iterdir()) == ["manual__mixed", "scheduled__recent"]
    assert result["run_dirs"] == ["scheduled__old"]
    assert (result["run_files"], result["run_bytes"]) == (2, 1001)
    assert result["ledger_rows"] == 3
    assert store.acknowledged(k for k, _ in events) == {"e3", "e4"}
    assert result["dead_letters"] == {"malformed_email": 2, "vendor_rejected": 1}
    assert [d.run_id for d in store.dead_letters()] == ["r-new"]
    [report] = store.run_reports(DAG_ID)
    assert report["run_id"] == "scheduled__2026-06-01" and report["ok"]
    assert "| run directories | 1 (2 files, 0.0 MB) |" in report["text"]
    assert "| acknowledged-event ledger rows | 3 |" in report["text"]
    assert "dead letters | 3 (malformed_email: 2, vendor_rejected: 1)" in report["text"]


def test_a_second_pass_frees_nothing(tmp_path, store):
    root = tmp_path / "data"
    (root / "runs").mkdir(parents=True)
    first = run_maintenance("m1", now=NOW, store=store, root=root)
    again = run_maintenance("m2", now=NOW, store=store, root=root)
    assert first["run_dirs"] == again["run_dirs"] == [] and again["ledger_rows"] == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(acknowledged_events)).scalar() == 0


def test_a_ledger_retention_shorter_than_the_look_back_is_refused():
    assert ledger_days({"CREATOR_SYNC_RETAIN_LEDGER_DAYS": "10"}) == 10
    with pytest.raises(CreatorSyncConfigError, match="too short"):
        ledger_days({"CREATOR_SYNC_RETAIN_LEDGER_DAYS": "3"})
    with pytest.raises(CreatorSyncConfigError, match="at least 12 days with CREATOR_SYNC_LOOKBACK_HOURS=240"):
        ledger_days({"CREATOR_SYNC_RETAIN_LEDGER_DAYS": "10", "CREATOR_SYNC_LOOKBACK_HOURS": "240"})
    with pytest.raises(CreatorSyncConfigError, match="allowed is a whole number >= 1"):
        ledger_days({"CREATOR_SYNC_RETAIN_LEDGER_DAYS": "two weeks"})


def test_the_incremental_income_sweep_needs_nine_days_of_ledger():
    # the weekly sweep re-reads transactions from midnight 7 days back: 8 days of acknowledgements at most
    with pytest.raises(
        CreatorSyncConfigError, match="at least 9 days with CREATOR_SYNC_FETCH_MODE=incremental"
    ):
        ledger_days({"CREATOR_SYNC_RETAIN_LEDGER_DAYS": "8"})
    assert ledger_days({"CREATOR_SYNC_RETAIN_LEDGER_DAYS": "8", "CREATOR_SYNC_FETCH_MODE": "full"}) == 8
    assert ledger_days({"CREATOR_SYNC_RETAIN_LEDGER_DAYS": "9"}) == 9


def test_per_run_detail_rows_older_than_the_run_files_go(tmp_path, store, monkeypatch):
    from creator_sync.store.schema import run_users, send_claims

    monkeypatch.delenv("CREATOR_SYNC_RETAIN_RUN_FILES_DAYS", raising=False)
    for run in ("r-old", "r-new"):
        store.record_outcomes(run, [(f"{run}-u{i}", "unchanged", 0) for i in range(3)])
    backdate(store, run_users, "updated_at", 15, run_id="r-old")
    backdate(store, run_users, "updated_at", 13, run_id="r-new")
    store.claim("r-dead", ["u9"], lease_s=1)
    with store.write() as conn:  # a claim whose lease ran out 20 days ago (its run died)
        conn.execute(send_claims.update().values(lease_until=(NOW - timedelta(days=20)).timestamp()))

    result = run_maintenance("m", now=NOW, store=store, root=tmp_path / "data")

    assert result["run_detail_rows"] == 4
    assert store.run_outcomes("r-old") == {} and store.run_outcomes("r-new")["unchanged"]["users"] == 3
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(send_claims)).scalar() == 0
