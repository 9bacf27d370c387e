"""The state store at scale: plan, claim, record and retention of a full run over a filled ledger.

    python -m devtools.bench.state_store --backend sqlite|postgresql --users 100000 [--ledger-events 30]

Fills a fresh store (SQLite in a temp dir, or a throw-away PostgreSQL database on CREATOR_SYNC_TEST_POSTGRES,
default 127.0.0.1:5432) with `--users` attribute hashes and `--users x --ledger-events` acknowledged events
spread over the 91 days before now (the ledger keeps 90: about 1/91 of it is past retention), then times,
through the public StateStore API (creator_sync.store), what one full run does with it (pipeline/send.py):

- plan: per chunk of 1,000 users (send's `read_chunk`): `claim`, `acknowledged_by` of the run's event keys
  (`--run-events` per user, half of them already in the ledger) and `attribute_hashes`;
- record: then that chunk's `record_batch` (its users' new events, hashes and outcomes) and `renew_claims`
  (every claim the run holds so far), as the sender does; at the end `release_claims`;
- the proposed claim (`claim_one_statement`) over the same users, for comparison;
- retention: `creator_sync.retention.purge_state` with the 90-day ledger cut-off.

Prints one JSON line: seconds per phase at this size and each projected to 1,000,000 users in proportion
(the per-user work is index lookups and inserts: O(log n) each, so the projection is a slight under-estimate
of the B-tree depth's share; run it at two sizes to see how far from linear it is).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

READ_CHUNK = 1000
BATCH = 1000
RUN_ID = "bench_run"
LEASE_S = 3600.0
LOAD_ROWS = 200_000


def _key(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def _uuid(i: int) -> str:
    return f"{_key('user', i)[:8]}-{i:09d}"


@contextmanager
def _store(backend: str):
    from creator_sync.store import StateStore

    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp:
            store = StateStore(f"sqlite:///{Path(tmp) / 'state.db'}")
            try:
                yield store
            finally:
                store.engine.dispose()
        return
    from devtools.celery_stack import PG_HOST, PG_PORT, PG_USER, create_database, drop_database, unique_name

    name = unique_name("cs_bench_state")
    create_database(name)
    store = StateStore(f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}")
    try:
        yield store
    finally:
        store.engine.dispose()
        drop_database(name)


def _fill(store, users: int, ledger_events: int, now: datetime) -> dict[str, float]:
    """Bulk-load the ledger and the hashes (setup, not part of the measured run)."""
    from creator_sync.store.schema import acknowledged_events, user_attribute_hashes

    began = time.perf_counter()
    span = timedelta(days=91).total_seconds()
    total = users * ledger_events

    def ledger_rows(lo: int, hi: int):
        for n in range(lo, hi):
            u = n // ledger_events
            at = now - timedelta(seconds=span * ((n * 7919) % total) / total)
            yield _key("ev", u, n % ledger_events), _uuid(u), f"old_run_{n % 2160}", f"b{n // BATCH}", at

    def hash_rows(lo: int, hi: int):
        for u in range(lo, hi):
            yield _uuid(u), _key("h", u), "old_run", now - timedelta(days=1)

    tables = [(acknowledged_events, total, ledger_rows), (user_attribute_hashes, users, hash_rows)]
    if store.engine.dialect.name == "sqlite":
        dialect = store.engine.dialect
        for table, count, rows in tables:
            convert = [c.type.bind_processor(dialect) or (lambda v: v) for c in table.columns]
            marks = ",".join("?" * len(table.columns))
            raw = store.engine.raw_connection()
            try:
                cur = raw.cursor()
                for lo in range(0, count, LOAD_ROWS):
                    cur.execute("BEGIN")
                    cur.executemany(
                        f"INSERT INTO {table.name} VALUES ({marks})",
                        (
                            tuple(f(v) for f, v in zip(convert, row, strict=True))
                            for row in rows(lo, min(count, lo + LOAD_ROWS))
                        ),
                    )
                    cur.execute("COMMIT")
            finally:
                raw.close()
    else:
        raw = store.engine.raw_connection()
        try:
            cur = raw.cursor()
            for table, count, rows in tables:
                for lo in range(0, count, LOAD_ROWS):
                    buf = io.StringIO()
                    for row in rows(lo, min(count, lo + LOAD_ROWS)):
                        buf.write(
                            "\t".join(v.isoformat() if isinstance(v, datetime) else v for v in row) + "\n"
                        )
                    buf.seek(0)
                    cur.copy_expert(f"COPY {table.name} FROM STDIN", buf)
                raw.commit()
            cur.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    return {"fill_s": round(time.perf_counter() - began, 1), "ledger_rows": total}


def _run_keys(u: int, run_events: int) -> list[str]:
    """The run's event keys of user u: the first half already acknowledged (look-back), the rest new."""
    old = run_events // 2
    return [_key("ev", u, j) for j in range(old)] + [_key("new", u, j) for j in range(run_events - old)]


def claim_one_statement(store, run_id: str, user_keys: list[str], lease_s: float) -> set[str]:
    """The claim as ONE statement per part (the change proposed for StateStore.claim, measured here beside
    it): insert, or take over a key that is this run's or whose lease has passed, returning the keys the run
    now holds (SQLite >= 3.35 and PostgreSQL: INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING)."""
    import sqlalchemy as sa

    from creator_sync.store.engine import IN_CHUNK
    from creator_sync.store.schema import send_claims as t

    at = store.clock()
    until = at + lease_s
    held: set[str] = set()
    mine = sa.func.coalesce(t.c.fence, t.c.run_id) == run_id
    with store.write() as conn:
        for lo in range(0, len(user_keys), IN_CHUNK):
            rows = [
                {"user_key": k, "run_id": run_id, "lease_until": until, "fence": run_id}
                for k in user_keys[lo : lo + IN_CHUNK]
            ]
            stmt = store._insert(t)
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.user_key],
                set_={
                    "run_id": stmt.excluded.run_id,
                    "lease_until": stmt.excluded.lease_until,
                    "fence": stmt.excluded.fence,
                },
                where=sa.or_(mine, t.c.lease_until < at),
            ).returning(t.c.user_key)
            held.update(conn.execute(stmt, rows).scalars())
    return held


def measure(backend: str, users: int, ledger_events: int, run_events: int) -> dict[str, Any]:
    from creator_sync.retention import Freed, purge_state
    from creator_sync.store import OUTCOME_SENT

    now = datetime.now(UTC)
    out: dict[str, Any] = {"backend": backend, "users": users, "ledger_events": ledger_events}
    with _store(backend) as store:
        out.update(_fill(store, users, ledger_events, now))
        times = dict.fromkeys(("claim", "ledger", "hashes", "record", "renew", "release", "retention"), 0.0)

        def timed(name, fn, *args, **kwargs):
            began = time.perf_counter()
            result = fn(*args, **kwargs)
            times[name] += time.perf_counter() - began
            return result

        acked = 0
        new = run_events - run_events // 2
        for lo in range(0, users, READ_CHUNK):  # as the sender: plan a chunk, send it, renew the leases
            ids = range(lo, min(users, lo + READ_CHUNK))
            keys = [_uuid(u) for u in ids]
            held = timed("claim", store.claim, RUN_ID, keys, LEASE_S)
            assert len(held) == len(keys)
            run_keys = {u: _run_keys(u, run_events) for u in ids}
            acked += len(timed("ledger", store.acknowledged_by, [k for u in ids for k in run_keys[u]]))
            timed("hashes", store.attribute_hashes, keys)
            timed(
                "record",
                store.record_batch,
                run_id=RUN_ID,
                batch_key=f"{RUN_ID}:{lo}",
                events=[(k, _uuid(u)) for u in ids for k in run_keys[u][run_events // 2 :]],
                hashes=[(_uuid(u), _key("h2", u)) for u in ids],
                failures=[],
                outcomes=[(_uuid(u), OUTCOME_SENT, new) for u in ids],
            )
            timed("renew", store.renew_claims, RUN_ID, LEASE_S)
        out["acknowledged_found"] = acked
        timed("release", store.release_claims, RUN_ID)
        # the proposed claim, over the same users: first all free, then all held by a live other run
        times["claim_proposed"] = 0.0
        for lo in range(0, users, READ_CHUNK):
            keys = [_uuid(u) for u in range(lo, min(users, lo + READ_CHUNK))]
            held = timed("claim_proposed", claim_one_statement, store, "proposed_run", keys, LEASE_S)
            assert len(held) == len(keys)
        other = timed(
            "claim_proposed", claim_one_statement, store, "other_run", [_uuid(0), _uuid(1)], LEASE_S
        )
        assert not other  # held by a live run: not taken
        store.release_claims("proposed_run")
        freed = Freed()
        timed("retention", purge_state, store, now - timedelta(days=90), now - timedelta(days=90), freed)
        out["retention_deleted_rows"] = freed.ledger_rows
    scale = 1_000_000 / users
    for name, seconds in times.items():
        out[f"{name}_s"] = round(seconds, 2)
    out["plan_s"] = round(times["claim"] + times["ledger"] + times["hashes"], 2)
    out["record_all_s"] = round(times["record"] + times["renew"] + times["release"], 2)
    out["plan_s_1m"] = round(out["plan_s"] * scale, 1)
    out["claim_s_1m"] = round(times["claim"] * scale, 1)
    out["claim_proposed_s_1m"] = round(times["claim_proposed"] * scale, 1)
    out["plan_proposed_s_1m"] = round(
        (times["claim_proposed"] + times["ledger"] + times["hashes"]) * scale, 1
    )
    out["record_s_1m"] = round((times["record"] + times["release"]) * scale, 1)
    # renew_claims updates every claim the run holds after every batch: sum of k x 1,000 over the batches k,
    # quadratic in users
    out["renew_s_1m"] = round(times["renew"] * scale**2, 1)
    out["retention_s_1m"] = round(times["retention"] * scale, 1)
    out["state_s_1m"] = round(sum(out[k] for k in ("plan_s_1m", "record_s_1m", "renew_s_1m")), 1)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--ledger-events", type=int, default=30)
    parser.add_argument("--run-events", type=int, default=2)
    args = parser.parse_args(argv)
    out = measure(args.backend, args.users, args.ledger_events, args.run_events)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
