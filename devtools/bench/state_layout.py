"""The plan's state reads against the order of its chunks and the ledger's key layout, A/B in one process.

    python -m devtools.bench.state_layout --backend sqlite|postgresql --users 100000

Fills a store as devtools.bench.state_store does, copies the ledger into ``ack_u`` keyed (user_key,
event_key) (SQLite ``WITHOUT ROWID``, clustered by it; PostgreSQL: the primary key ``INCLUDE (run_id)``, read
index-only), then per 1,000-user chunk times `claim`, `acknowledged_by` and `attribute_hashes` with the chunks
in the bench's order (``random``: the user keys of a chunk are spread over the whole key space) and in
user-key order (``sorted``: chunk k holds the k-th thousand keys), and in both orders the ledger read of
``ack_u`` by (user_key, event_key) pairs (``ledger_by_user_<order>``). Two alternating rounds, so neither
order always runs on the colder cache; the claims are released after each round. Prints one JSON line of CPU
and wall seconds per figure (CPU: this process and the database's server backends, as the state bench).

An experiment, not a `make bench` section: ``ack_u`` is no table of the store's schema.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from devtools.bench import state_store as bench

_PG_TABLE = """CREATE TABLE ack_u (event_key varchar(64) NOT NULL, user_key varchar(255) NOT NULL,
 run_id varchar(255) NOT NULL, batch_key varchar(255) NOT NULL, acked_at timestamptz NOT NULL,
 PRIMARY KEY (user_key, event_key) INCLUDE (run_id))"""
_SQLITE_TABLE = """CREATE TABLE ack_u (event_key VARCHAR(64) NOT NULL, user_key VARCHAR(255) NOT NULL,
 run_id VARCHAR(255) NOT NULL, batch_key VARCHAR(255) NOT NULL, acked_at DATETIME NOT NULL,
 PRIMARY KEY (user_key, event_key)) WITHOUT ROWID"""
_PG_READ = """SELECT a.event_key, a.run_id FROM unnest(%s::varchar[], %s::varchar[]) AS p(u, e)
 JOIN ack_u a ON a.user_key = p.u AND a.event_key = p.e"""
_SQLITE_READ = """SELECT a.event_key, a.run_id FROM json_each(?) AS p CROSS JOIN ack_u a
 ON a.user_key = json_extract(p.value, '$[0]') AND a.event_key = json_extract(p.value, '$[1]')"""


def _copy_ledger(store) -> None:
    """``ack_u``: the ledger's rows under the user-keyed primary key."""
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            raw.autocommit = True
            cur = raw.cursor()
            cur.execute(_PG_TABLE)
            cur.execute("INSERT INTO ack_u SELECT * FROM acknowledged_events")
            cur.execute("VACUUM ANALYZE ack_u")
            cur.execute("CHECKPOINT")
            raw.autocommit = False
            return
        raw.execute(_SQLITE_TABLE)
        raw.execute("BEGIN")
        raw.execute("INSERT INTO ack_u SELECT * FROM acknowledged_events ORDER BY user_key, event_key")
        raw.execute("COMMIT")


def _read_by_user(store, pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The ledger read of ``ack_u``: the (user_key, event_key) pairs, sorted, as one bound parameter."""
    pairs = sorted(set(pairs))
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            cur = raw.cursor()
            cur.execute(_PG_READ, ([u for u, _ in pairs], [e for _, e in pairs]))
            rows = cur.fetchall()
            raw.commit()
            return dict(rows)
        return dict(raw.execute(_SQLITE_READ, (json.dumps(pairs),)).fetchall())


def _round(store, timed, name: str, chunks: list[list[int]]) -> dict[str, int]:
    """One pass over the chunks: claim, ledger read, hash read and the user-keyed ledger read."""
    found = {name: 0, "by_user": 0}
    for ids in chunks:
        timed.refresh()
        keys = [bench._uuid(u) for u in ids]
        assert len(timed(f"claim_{name}", store.claim, "layout_run", keys, bench.LEASE_S)) == len(keys)
        events = [(bench._uuid(u), k) for u in ids for k in bench._run_keys(u, 2)]
        found[name] += len(timed(f"ledger_{name}", store.acknowledged_by, [k for _, k in events]))
        timed(f"hashes_{name}", store.attribute_hashes, keys)
        found["by_user"] += len(timed(f"ledger_by_user_{name}", _read_by_user, store, events))
    store.release_claims("layout_run")
    return found


def measure(backend: str, users: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "backend": backend,
        "users": users,
        "load_average_start": round(os.getloadavg()[0], 1),
    }
    with bench._store(backend) as store:
        out.update(bench._fill(store, users, 30, datetime.now(UTC)))
        began = time.perf_counter()
        _copy_ledger(store)
        out["copy_s"] = round(time.perf_counter() - began, 1)
        timed = bench._Timer(store)
        ordered = sorted(range(users), key=bench._uuid)
        orders = {
            "random": [
                list(range(lo, min(users, lo + bench.READ_CHUNK))) for lo in range(0, users, bench.READ_CHUNK)
            ],
            "sorted": [ordered[lo : lo + bench.READ_CHUNK] for lo in range(0, users, bench.READ_CHUNK)],
        }
        found: dict[str, int] = {}
        for _ in range(2):
            for name, chunks in orders.items():
                for key, n in _round(store, timed, name, chunks).items():
                    found[key] = found.get(key, 0) + n
        assert found["random"] == found["sorted"] == found["by_user"] / 2, f"the reads differ: {found}"
    out["cpu_s"] = {k: round(v, 2) for k, v in sorted(timed.cpu.items())}
    out["wall_s"] = {k: round(v, 2) for k, v in sorted(timed.wall.items())}
    out["load_average_end"] = round(os.getloadavg()[0], 1)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args(argv)
    out = measure(args.backend, args.users)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
