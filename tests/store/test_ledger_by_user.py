"""The sender's ledger read by (user_key, event_key) (Ledger.acknowledged_of; on PostgreSQL from the index of
migration 0008, ix_acknowledged_events_user_key): a filled 0007 store upgrades with its ledger intact and its
event keys still unique, the read answers what the read by event key answers, and a second run sends none of
the events the first one acknowledged (SQLite and PostgreSQL). The control switches off what the read relies
on, each ledger row holding the user its event key is made from, and the second run sends the events again."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from creator_sync.pipeline.send import send_users
from creator_sync.store import StateStore, migrate
from creator_sync.store.schema import acknowledged_events
from devtools.services import require_postgres
from tests.exactly_once.harness import content_event, user
from tests.pipeline.factories import FakeInsiderHook

from .stores import dialect_store

PREVIOUS = "0007_account_history_reason"
INDEX = "ix_acknowledged_events_user_key"
USERS, EVENTS = 200, 3
T = "2026-12-01T10:00:00Z"


def _key(u: int, j: int) -> str:
    return hashlib.sha256(f"ev:{u}:{j}".encode()).hexdigest()


def _user(u: int) -> str:
    return f"u{u:04d}"


@contextmanager
def _database(dialect: str, tmp_path: Path) -> Iterator[str]:
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    from devtools.celery_stack import PG_HOST, PG_PORT, PG_USER, create_database, drop_database, unique_name

    require_postgres("the ledger's user-keyed read on PostgreSQL")
    name = unique_name("cs_ledger_0008")
    create_database(name)
    try:
        yield f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        drop_database(name)


def _filled_0007(url: str) -> None:
    """A store at revision 0007 whose ledger holds USERS x EVENTS acknowledged events."""
    engine = sa.create_engine(url)
    cfg = migrate.config()
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    rows = [
        {
            "event_key": _key(u, j),
            "user_key": _user(u),
            "run_id": f"r{u % 3}",
            "batch_key": "b0",
            "acked_at": at,
        }
        for u in range(USERS)
        for j in range(EVENTS)
    ]
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, PREVIOUS)
        conn.execute(acknowledged_events.insert(), rows)
    engine.dispose()


def _indexes(store: StateStore) -> dict[str, list[str]]:
    return {i["name"]: i["column_names"] for i in sa.inspect(store.engine).get_indexes("acknowledged_events")}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_filled_0007_store_upgrades_and_the_read_by_user_answers_as_the_read_by_event(dialect, tmp_path):
    with _database(dialect, tmp_path) as url:
        _filled_0007(url)
        store = StateStore(url)
        try:
            with store.engine.connect() as conn:
                assert migrate.current(conn) == migrate.head()
                assert (
                    conn.execute(sa.select(sa.func.count()).select_from(acknowledged_events)).scalar() == 600
                )
            # PostgreSQL reads by user from the new index, index-only; SQLite reads by event key and has no
            # such index
            assert (INDEX in _indexes(store)) == (dialect == "postgresql")
            if dialect == "postgresql":
                assert _indexes(store)[INDEX] == ["user_key", "event_key"]
                plan = _read_plan(store)
                assert f"Index Only Scan using {INDEX}" in plan, plan
            acked = {_key(u, j): f"r{u % 3}" for u in range(USERS) for j in range(EVENTS)}
            pairs = [(_user(u), _key(u, j)) for u in range(USERS + 10) for j in range(EVENTS + 1)]
            assert store.acknowledged_by(k for _, k in pairs) == acked  # the ledger survived the upgrade
            assert store.acknowledged_of(reversed(pairs)) == acked
            assert store.acknowledged_of([]) == {}
            _event_keys_stay_unique(store)
        finally:
            store.engine.dispose()


def _event_keys_stay_unique(store: StateStore) -> None:
    """The exactly-once guard's key: a second row of an acknowledged event key is refused (another user
    included), and record_batch keeps the row already there."""
    row = {
        "event_key": _key(0, 0),
        "user_key": "other",
        "run_id": "r9",
        "batch_key": "b9",
        "acked_at": datetime.now(UTC),
    }
    with pytest.raises(sa.exc.IntegrityError), store.write() as conn:
        conn.execute(acknowledged_events.insert(), [row])
    store.record_batch(run_id="r9", batch_key="b9", events=[(_key(0, 0), "other")], hashes=[], failures=[])
    assert store.acknowledged_of([(_user(0), _key(0, 0)), ("other", _key(0, 0))]) == {_key(0, 0): "r0"}


def _read_plan(store: StateStore) -> str:
    """PostgreSQL's plan of the read's own statement with the other ways off: it fits the index."""
    statements: list[str] = []

    def seen(conn, cursor, statement, *_):
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    store.acknowledged_of([(_user(1), _key(1, 0))])
    sa.event.remove(store.engine, "before_cursor_execute", seen)
    (read,) = [s for s in statements if "unnest" in s]
    with store.engine.connect() as conn:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin"):
            conn.exec_driver_sql(f"SET {setting} = off")
        keys = {"user_keys": [_user(1)], "event_keys": [_key(1, 0)]}
        return "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {read}", keys))


def _send_twice(store: StateStore, between=None) -> tuple[Counter, int]:
    """Two runs of the same 3 users with one event each; `between` runs after the first. Returns how often
    each event was sent and the second run's count of events already acknowledged."""
    users = [user(f"u{i}", [content_event(f"c{i}", T)]) for i in range(3)]
    hook = FakeInsiderHook()
    send_users(users, state=store, hook=hook, run_id="run-1")
    if between is not None:
        between(store)
    report = send_users(users, state=store, hook=hook, run_id="run-2")
    return Counter(hook.sent_events()), report.events_already_acknowledged


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_second_run_sends_no_acknowledged_event(dialect, tmp_path):
    with dialect_store(dialect, tmp_path, "cs_ledger_twice", "the sender's ledger read") as store:
        sent, already = _send_twice(store)
    assert len(sent) == 3 and set(sent.values()) == {1} and already == 3


def test_control_a_ledger_row_under_another_user_is_not_seen_and_the_event_is_sent_again(tmp_path):
    """Guard off: the ledger's rows no longer hold the user their event key is made from (record_batch
    writes the planned user; here an UPDATE moves them), so PostgreSQL's read by user misses them."""

    def move(store: StateStore) -> None:
        with store.write() as conn:
            conn.execute(acknowledged_events.update().values(user_key="someone-else"))

    with dialect_store("postgresql", tmp_path, "cs_ledger_ctl", "the sender's ledger read") as store:
        sent, already = _send_twice(store, move)
    assert set(sent.values()) == {2} and already == 0
