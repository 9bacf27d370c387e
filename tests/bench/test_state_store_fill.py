"""The state bench's fill: SQLite's rows come from Python, PostgreSQL's from the server (sha256() in SQL), and
both must be the same rows in the same order, or the two backends' figures measure different ledgers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from creator_sync.store.schema import acknowledged_events, user_attribute_hashes
from devtools.bench import state_store

USERS, EVENTS = 40, 30


def _filled(backend: str, now: datetime) -> dict[str, list[tuple]]:
    order = {"sqlite": "rowid", "postgresql": "ctid"}[backend]  # the storage order: by user key, then event
    with state_store._store(backend) as store:
        assert state_store._fill(store, USERS, EVENTS, now)["ledger_rows"] == USERS * EVENTS
        with store.engine.connect() as conn:  # read through the schema's types, as the store reads
            return {
                t.name: [
                    tuple(
                        v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v
                        for v in r
                    )
                    for r in conn.execute(sa.select(t).order_by(sa.literal_column(order)))
                ]
                for t in (acknowledged_events, user_attribute_hashes)
            }


def test_both_backends_fill_the_same_rows_in_the_same_order():
    now = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    sqlite, postgresql = _filled("sqlite", now), _filled("postgresql", now)
    ledger = sqlite["acknowledged_events"]
    assert len(ledger) == USERS * EVENTS and len(sqlite["user_attribute_hashes"]) == USERS
    first, second = sorted(range(USERS), key=state_store._uuid)[:2]  # stored by user key, then event
    assert ledger[0][:2] == (state_store._key("ev", first, 0), state_store._uuid(first))
    assert ledger[EVENTS][:2] == (state_store._key("ev", second, 0), state_store._uuid(second))
    assert [r[0] for r in sqlite["user_attribute_hashes"]] == sorted(map(state_store._uuid, range(USERS)))
    assert (
        now - timedelta(days=91) <= min(r[4] for r in ledger) < now - timedelta(days=90)
    )  # 1/91 past retention
    assert postgresql == sqlite
    with state_store._store("sqlite") as store:  # stored as the store writes its own times (UTC, no offset)
        state_store._fill(store, 1, 1, now.replace(microsecond=123456))
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT acked_at FROM acknowledged_events").scalar() == str(
                now.replace(tzinfo=None, microsecond=123456)
            )


def test_the_bench_runs_on_a_filled_postgresql_store():
    out = state_store.measure("postgresql", 2000, 30, 2)
    assert out["acknowledged_found"] == 2000  # one of each user's two run events is in the ledger
    assert out["retention_deleted_rows"] > 0 and out["plan_cpu_s"] > 0
