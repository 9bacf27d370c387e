"""``StoreBase.insert_rows`` against the row-by-row write it stands for: ``Ledger.record_batch`` leaves the
rows a write of each row with its own INSERT ... ON CONFLICT leaves (written here, beside the store, from the
schema alone), for any text (quotes, braces, backslashes, "NULL", emoji, combining marks, line breaks) and
repeated keys, on SQLite, on PostgreSQL through psycopg2 and through psycopg (3), and for a column whose
values are of mixed Python types; and a PostgreSQL statement carries at most ROW_TEXT characters of text, so
dead letters of users too large to send (over 4.9 MB each) are not all quoted into one statement."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from creator_sync.store import StateStore, engine
from creator_sync.store.dead_letters import dead_letter_id
from creator_sync.store.schema import acknowledged_events, dead_letters, run_users, user_attribute_hashes

from .stores import dialect_store

WHAT = "the insert_rows tests on PostgreSQL"
OUTCOMES = ("sent", "unchanged", "vendor_rejected", "claimed_elsewhere")
WEIRD = [
    "",
    " ",
    "a ",
    "{a,b}",
    '"',
    "'",
    "\\",
    "NULL",
    "null",
    ",",
    "()",
    "😀",
    "é",
    "e\u0301",
    "\t\n",
    "\r",
]
CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


@pytest.fixture(params=["sqlite", "psycopg2", "psycopg"])
def store(request, tmp_path) -> Iterator[StateStore]:
    dialect = "sqlite" if request.param == "sqlite" else "postgresql"
    with dialect_store(dialect, tmp_path, "cs_insert_rows", WHAT) as s:
        if request.param != "psycopg":
            yield s
            return
        url = s.engine.url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        other = StateStore(url)
        try:
            yield other
        finally:
            other.engine.dispose()


@pytest.fixture
def pg_store(tmp_path) -> Iterator[StateStore]:
    with dialect_store("postgresql", tmp_path, "cs_insert_rows", WHAT) as s:
        yield s


def _row_by_row(store, run_id, batch_key, batch) -> None:
    """What record_batch writes, one row per INSERT ... ON CONFLICT (SQLAlchemy's per-row statements)."""
    at = engine.now()
    insert = (postgresql if store.engine.dialect.name == "postgresql" else sqlite).insert
    with store.write() as conn:
        for k, u in batch["events"]:
            row = {"event_key": k, "user_key": u, "run_id": run_id, "batch_key": batch_key, "acked_at": at}
            conn.execute(insert(acknowledged_events).values(row).on_conflict_do_nothing())
        for u, h in batch["hashes"]:
            stmt = insert(user_attribute_hashes).values(user_key=u, attr_hash=h, run_id=run_id, acked_at=at)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["user_key"], set_={"attr_hash": h, "run_id": run_id, "acked_at": at}
                )
            )
        for f in batch["failures"]:
            row = {
                **{k: f[k] for k in ("user_key", "reason", "detail")},
                **{"id": dead_letter_id(run_id, f["user_key"], f["reason"]), "run_id": run_id},
                **{"payload": json.dumps(f["payload"]), "created_at": at, "replayed_at": None},
            }
            conn.execute(insert(dead_letters).values(row).on_conflict_do_nothing())
        for u, o, n in batch["outcomes"]:
            stmt = insert(run_users).values(run_id=run_id, user_key=u, outcome=o, events=n, updated_at=at)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_id", "user_key"],
                    set_={"outcome": o, "events": n, "updated_at": at},
                    where=run_users.c.outcome != "sent",
                )
            )


def _stored(store, ns):
    """Every table's rows of the users and events under `ns`, without `ns` and the write's timestamps."""
    e, h, d, r = acknowledged_events, user_attribute_hashes, dead_letters, run_users
    n = len(ns)
    with store.engine.connect() as conn:
        events = conn.execute(
            sa.select(e.c.event_key, e.c.user_key, e.c.run_id).where(e.c.event_key.startswith(ns))
        )
        hashes = conn.execute(
            sa.select(h.c.user_key, h.c.attr_hash, h.c.run_id).where(h.c.user_key.startswith(ns))
        )
        letters = conn.execute(
            sa.select(d.c.run_id, d.c.user_key, d.c.reason, d.c.detail, d.c.payload).where(
                d.c.user_key.startswith(ns)
            )
        )
        outcomes = conn.execute(
            sa.select(r.c.run_id, r.c.user_key, r.c.outcome, r.c.events).where(r.c.user_key.startswith(ns))
        )
        return (
            {k[n:]: (u[n:], run) for k, u, run in events},
            {u[n:]: (x, run) for u, x, run in hashes},
            {(run, u[n:], why): (detail, json.loads(p)) for run, u, why, detail, p in letters},
            {(run, u[n:]): (o, k) for run, u, o, k in outcomes},
        )


def _under(ns, batch):
    """The batch with its event and user keys under `ns` (the two writes share one database)."""
    return {
        "events": [(ns + k, ns + u) for k, u in batch["events"]],
        "hashes": [(ns + u, h) for u, h in batch["hashes"]],
        "failures": [{**f, "user_key": ns + f["user_key"]} for f in batch["failures"]],
        "outcomes": [(ns + u, o, n) for u, o, n in batch["outcomes"]],
    }


keys = st.one_of(st.sampled_from(WEIRD), st.text(CHARS, max_size=6))
texts = st.one_of(st.sampled_from(WEIRD), st.text(CHARS, max_size=40))
failure = st.fixed_dictionaries(
    {
        "user_key": keys,
        "reason": st.sampled_from(["vendor_rejected", "user_too_large", "R,{}"]),
        "detail": texts,
        "payload": st.dictionaries(keys, texts, max_size=2),
    }
)
batch_st = st.fixed_dictionaries(
    {
        "events": st.lists(st.tuples(keys, keys), max_size=6),
        "hashes": st.lists(st.tuples(keys, st.text(CHARS, max_size=8)), max_size=5),
        "failures": st.lists(failure, max_size=4),
        "outcomes": st.lists(
            st.tuples(keys, st.sampled_from(OUTCOMES), st.integers(0, 2**31 - 1)), max_size=6
        ),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.tuples(st.sampled_from(["r1", "r2"]), batch_st), min_size=1, max_size=3))
def test_record_batch_leaves_the_rows_of_a_row_by_row_write(store, batches):
    ours, theirs = uuid.uuid4().hex[:8] + ":", uuid.uuid4().hex[:8] + "~"
    for i, (run, batch) in enumerate(batches):
        mine = _under(ours, batch)
        store.record_batch(
            run_id=run,
            batch_key=f"{ours}b{i}",
            events=mine["events"],
            hashes=mine["hashes"],
            failures=mine["failures"],
            outcomes=mine["outcomes"],
        )
        _row_by_row(store, run, f"{theirs}b{i}", _under(theirs, batch))
    assert _stored(store, ours) == _stored(store, theirs)


def test_a_statement_carries_at_most_row_text_characters_of_text(pg_store, monkeypatch):
    """psycopg2 quotes a statement's arrays into one SQL text that it and the server each copy while it
    runs: 40 dead letters of 5 MB took 1.0 GB of the worker's memory in one statement, 0.3 GB row by row. A
    part holds ROW_TEXT characters (here 1,000) or a single row."""
    store = pg_store
    monkeypatch.setattr(engine, "ROW_TEXT", 1_000, raising=False)
    sent: list[int] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _text(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO dead_letters"):
            sent.append(
                sum(
                    len(v)
                    for a in parameters.values()
                    if isinstance(a, list)
                    for v in a
                    if isinstance(v, str)
                )
            )

    letters = [
        {"user_key": f"u{i}", "reason": "user_too_large", "payload": {"x": "y" * 400}} for i in range(5)
    ]
    store.add_dead_letters("r", letters)
    assert store.count_dead_letters("r") == {"user_too_large": 5}
    assert len(sent) == 3 and all(n <= 1_000 for n in sent), sent  # 2 + 2 + 1 of 5 letters of 490


def test_a_column_of_mixed_types_is_written_as_a_row_by_row_write_writes_it(store):
    """Values of one column that are not all of one Python type (a user key 5 beside "u"): a row-by-row
    write has the database cast each one to its column ('5'). One typed array cannot hold them: psycopg
    refuses the list ("cannot dump lists of mixed types"), and psycopg2's array holds "5" and 5, two keys to
    the Python deduplication, as one key twice (ON CONFLICT DO UPDATE cannot affect a row a second time)."""
    store.record_batch(
        run_id="r",
        batch_key="b",
        events=[("k1", "u"), ("k2", 5)],
        hashes=[("5", "h1"), (5, "h2")],
        failures=[{"user_key": 7, "reason": "R", "detail": "", "payload": {}}],
        outcomes=[("5", "unchanged", 0), (5, "sent", 1)],
    )
    assert store.acknowledged_by(["k1", "k2"]) == {"k1": "r", "k2": "r"}
    assert store.attribute_hashes(["5"])["5"][0] == "h2"
    assert store.run_user_outcomes("r", ["5"]) == {"5": "sent"}
    assert [d.user_key for d in store.dead_letters()] == ["7"]
