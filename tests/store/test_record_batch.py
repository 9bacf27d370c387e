"""What ``Ledger.record_batch`` writes, on SQLite and on PostgreSQL: the ledger, the attribute hashes, the
dead letters and the run's outcomes are what writing the batch's rows one by one with their ON CONFLICT
clauses leaves (a model checks random batches with repeated keys), written on PostgreSQL in one statement
per table (``StoreBase.insert_rows``: the rows as unnest() arrays), and a value too long for its column
fails the record as a single row would, instead of being cut to the column's length."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from creator_sync.store import StateStore
from creator_sync.store.dead_letters import dead_letter_id
from creator_sync.store.schema import acknowledged_events, dead_letters, run_users, user_attribute_hashes

from .stores import dialect_store

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
OUTCOMES = ("sent", "unchanged", "failed", "claimed_elsewhere")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[StateStore]:
    with dialect_store(
        request.param, tmp_path, "cs_record_batch", "the record_batch tests on PostgreSQL"
    ) as s:
        yield s


@pytest.fixture
def pg_store(tmp_path) -> Iterator[StateStore]:
    with dialect_store(
        "postgresql", tmp_path, "cs_record_batch", "the record_batch tests on PostgreSQL"
    ) as s:
        yield s


def _model(batches, ns):
    """The state writing each batch's rows one by one leaves: an event's first row stays, a hash's last row
    wins, a dead letter's first row stays, an outcome changes until it is "sent"."""
    events, hashes, letters, outcomes = {}, {}, {}, {}
    for run, batch in batches:
        for k, u in batch["events"]:
            events.setdefault(ns + k, (ns + u, run))
        for u, h in batch["hashes"]:
            hashes[ns + u] = (h, run)
        for f in batch["failures"]:
            letters.setdefault(dead_letter_id(run, ns + f["user_key"], f["reason"]), f["detail"])
        for u, o, n in batch["outcomes"]:
            if outcomes.get((run, ns + u), ("",))[0] != "sent":
                outcomes[(run, ns + u)] = (o, n)
    return events, hashes, letters, outcomes


def _stored(store, ns):
    e, h, d, r = acknowledged_events, user_attribute_hashes, dead_letters, run_users
    with store.engine.connect() as conn:
        events = {
            k: (u, run) for k, u, run in conn.execute(sa.select(e.c.event_key, e.c.user_key, e.c.run_id))
        }
        hashes = {
            u: (x, run) for u, x, run in conn.execute(sa.select(h.c.user_key, h.c.attr_hash, h.c.run_id))
        }
        letters = dict(conn.execute(sa.select(d.c.id, d.c.detail).where(d.c.user_key.startswith(ns))).all())
        outcomes = {
            (run, u): (o, n)
            for run, u, o, n in conn.execute(sa.select(r.c.run_id, r.c.user_key, r.c.outcome, r.c.events))
        }

    def keep(rows):
        return {k: v for k, v in rows.items() if (k[1] if isinstance(k, tuple) else k).startswith(ns)}

    return keep(events), keep(hashes), letters, keep(outcomes)


def _record(store, run, batch, ns, batch_key):
    store.record_batch(
        run_id=run,
        batch_key=batch_key,
        events=[(ns + k, ns + u) for k, u in batch["events"]],
        hashes=[(ns + u, h) for u, h in batch["hashes"]],
        failures=[
            {**f, "user_key": ns + f["user_key"], "payload": {"u": f["user_key"]}} for f in batch["failures"]
        ],
        outcomes=[(ns + u, o, n) for u, o, n in batch["outcomes"]],
    )


users = st.sampled_from("abc")
batch_st = st.fixed_dictionaries(
    {
        "events": st.lists(st.tuples(st.sampled_from(["e1", "e2", "e3"]), users), max_size=5),
        "hashes": st.lists(st.tuples(users, st.sampled_from(["h1", "h2"])), max_size=4),
        "failures": st.lists(
            st.fixed_dictionaries(
                {"user_key": users, "reason": st.sampled_from(["R1", "R2"]), "detail": st.sampled_from("xy")}
            ),
            max_size=3,
        ),
        "outcomes": st.lists(st.tuples(users, st.sampled_from(OUTCOMES), st.integers(0, 3)), max_size=5),
    }
)


@SETTINGS
@given(batches=st.lists(st.tuples(st.sampled_from(["r1", "r2"]), batch_st), min_size=1, max_size=3))
def test_a_batch_with_repeated_keys_leaves_what_writing_its_rows_one_by_one_leaves(store, batches):
    ns = uuid.uuid4().hex[:8] + ":"
    for i, (run, batch) in enumerate(batches):
        _record(store, run, batch, ns, f"{ns}b{i}")
    assert _stored(store, ns) == _model(batches, ns)


def test_a_batch_is_written_in_one_statement_per_table_on_postgresql(pg_store):
    """The control of insert_rows: SQLAlchemy's executemany of an INSERT ... ON CONFLICT sends one
    statement per row on psycopg2, so without the unnest() statements this sees executemany calls (SQLite
    writes in-process: its executemany has no round trips to save)."""
    store = pg_store
    sent: list[tuple[str, bool]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement.split()[0:3], executemany))

    users = [f"u{i}" for i in range(1200)]  # more than one IN_CHUNK (500): one statement all the same
    store.record_batch(
        run_id="r",
        batch_key="r:b",
        events=[(f"e{u}", u) for u in users],
        hashes=[(u, "h") for u in users],
        failures=[{"user_key": u, "reason": "R", "detail": "", "payload": {}} for u in users[:600]],
        outcomes=[(u, "sent", 1) for u in users],
    )
    inserts = [s for s in sent if s[0][0].upper() == "INSERT"]
    assert not [s for s in sent if s[1]], "an executemany: a statement per row"
    assert sorted(s[0][2] for s in inserts) == sorted(
        ["acknowledged_events", "user_attribute_hashes", "dead_letters", "run_users"]
    )
    assert len(store.acknowledged_by(f"e{u}" for u in users)) == 1200


def test_a_value_too_long_for_its_column_fails_the_record_and_writes_nothing(pg_store):
    """PostgreSQL's unnest() arrays are cast to unbounded text: a cast to VARCHAR(255)[] would cut a long
    user key to 255 characters and store it as another key (SQLite stores any length in a VARCHAR(n))."""
    store = pg_store
    long_key = "u" * 300
    with pytest.raises(sa.exc.DataError):
        store.record_batch(
            run_id="r", batch_key="r:b", events=[("e" * 64, "u")], hashes=[(long_key, "h")], failures=[]
        )
    assert store.attribute_hashes([long_key, long_key[:255]]) == {}
    assert store.acknowledged_by(["e" * 64]) == {}
