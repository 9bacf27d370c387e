"""Alembic owns the state schema: a database of the release before migrations upgrades in place, a fresh
one gets exactly the tables the code declares (SQLite and PostgreSQL), and processes opening a new
database together migrate it once."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from creator_sync.pipeline.send import send_users
from creator_sync.store import StateStore, migrate
from creator_sync.store import schema as state_mod
from devtools.services import require_postgres

PREVIOUS = Path(__file__).with_name("state_schema_0_1_0.sql")
NOW = "2026-12-01 10:00:00.000000"


def previous_release_db(path: Path) -> str:
    """A state database as release 0.1.0 left it: its schema, a ledger row, a claim, a dead letter and an
    unanswered batch in that release's record format."""
    conn = sqlite3.connect(path)
    conn.executescript(PREVIOUS.read_text())
    conn.execute("INSERT INTO acknowledged_events VALUES ('k1', 'u1', 'r0', 'b0', ?)", (NOW,))
    conn.execute("INSERT INTO send_claims VALUES ('u9', 'r-old', 1.0)")
    conn.execute(
        "INSERT INTO dead_letters VALUES ('d1', 'r0', 'u5', 'vendor_rejected', '', '{}', ?, NULL)", (NOW,)
    )
    record = {"events": [["k2", "u2"]], "hashes": [["u2", "h2"], ["u3", "h3"]], "probes": []}
    conn.execute("INSERT INTO in_flight_batches VALUES ('r0:b1', 'r0', ?, ?)", (json.dumps(record), NOW))
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def columns(engine: sa.Engine) -> dict[str, set[str]]:
    insp = sa.inspect(engine)
    return {
        t: {c["name"] for c in insp.get_columns(t)} for t in insp.get_table_names() if t != "alembic_version"
    }


def declared() -> dict[str, set[str]]:
    return {t.name: {c.name for c in t.columns} for t in state_mod.metadata.tables.values()}


def test_a_database_of_the_previous_release_upgrades_in_place(tmp_path):
    url = previous_release_db(tmp_path / "state.db")
    store = StateStore(url)
    with store.engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
    assert columns(store.engine) == declared()
    assert store.acknowledged(["k1"]) == {"k1"}  # the ledger survived
    assert [dl.id for dl in store.dead_letters()] == ["d1"]
    (marker,) = store.in_flight_markers()
    assert (marker.run_id, marker.fence, marker.lease_until) == ("r0", "r0", 0.0)  # probe-able at once
    assert store.claim("r1", ["u9"], lease_s=60, fence="r1#1#a") == {"u9"}  # the old lease has passed


def test_an_unanswered_batch_of_the_previous_release_is_held_not_guessed(tmp_path):
    """Its record names event keys, not the events: it cannot be settled by identity, so its events are
    held and dead-lettered, and its attribute-only user is sent again."""
    from tests.pipeline.factories import FakeInsiderHook

    store = StateStore(previous_release_db(tmp_path / "state.db"))
    hook = FakeInsiderHook()
    report = send_users([], state=store, hook=hook, run_id="r1")
    assert store.in_flight() == [] and hook.profile_calls == 0
    assert [(dl.user_key, dl.reason) for dl in store.dead_letters(reasons=["unsettled_lost_answer"])] == [
        ("u2", "unsettled_lost_answer")
    ]
    assert store.acknowledged(["k2"]) == {"k2"}  # held: never re-sent blindly
    assert report.rejected == {"unsettled_lost_answer": 1}


def test_a_fresh_database_gets_exactly_the_declared_tables(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    assert columns(store.engine) == declared()


def test_control_a_column_the_migrations_do_not_add_is_seen(tmp_path):
    """The comparison above fails when the code declares a column no migration creates."""
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    wanted = declared()
    wanted["send_claims"] = wanted["send_claims"] | {"not_migrated"}
    assert columns(store.engine) != wanted


def test_postgresql_gets_the_declared_tables_and_upgrades_from_the_baseline():
    from devtools.celery_stack import PG_HOST, PG_PORT, PG_USER, create_database, drop_database, unique_name

    require_postgres("the state store migrations on PostgreSQL")
    name = unique_name("cs_migrate")
    create_database(name)
    url = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    try:
        engine = sa.create_engine(url)
        cfg = migrate.config()
        with engine.begin() as conn:  # the previous release's tables, as create_all made them
            cfg.attributes["connection"] = conn
            from alembic import command

            command.upgrade(cfg, migrate.BASELINE)
            conn.execute(sa.text("DROP TABLE alembic_version"))
            conn.execute(sa.text("INSERT INTO send_claims VALUES ('u1', 'r0', 1.0)"))
        engine.dispose()
        store = StateStore(url)
        assert columns(store.engine) == declared()
        assert store.claim_holders(["u1"]) == {"u1": ("r0", "r0", 1.0)}
        store.engine.dispose()
    finally:
        drop_database(name)


def _open(url: str) -> str:
    with StateStore(url).engine.connect() as conn:
        return migrate.current(conn)


def test_processes_opening_a_new_database_together_migrate_it_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with ProcessPoolExecutor(4) as pool:
        revisions = list(pool.map(_open, [url] * 4))
    assert revisions == [migrate.head()] * 4


@pytest.mark.parametrize("revision", ["0001_baseline"])
def test_the_alembic_cli_configuration_upgrades_from_any_revision(tmp_path, revision):
    """`alembic upgrade head` semantics from an intermediate revision (an operator's own upgrade path)."""
    from alembic import command

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    cfg = migrate.config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        command.upgrade(cfg, "head")
        assert migrate.current(conn) == migrate.head()
    assert columns(engine) == declared()
