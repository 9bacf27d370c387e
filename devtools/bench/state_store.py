"""The state store at scale: plan, claim, record and retention of a full run over a filled ledger.

    python -m devtools.bench.state_store --backend sqlite|postgresql --users 100000 [--ledger-events 30]
        [--order key|input]

Fills a fresh store (SQLite in a temp dir, or a throw-away PostgreSQL database on CREATOR_SYNC_TEST_POSTGRES,
default 127.0.0.1:5432) with `--users` attribute hashes and `--users x --ledger-events` acknowledged events
spread over the 91 days before now (the ledger keeps 90: about 1/91 of it is past retention), then times,
through the public StateStore API (creator_sync.store), what one full run does with it (pipeline/send.py):

- plan: per chunk of 1,000 users (send's `read_chunk`; in user-key order as the sender reads users.jsonl,
  or `--order input`, see `_chunks`), what the sender's planner reads: `claim`, the in-flight markers and the
  offboarding skip list (`in_flight_markers`, `offboarded_ids`), `acknowledged_of` of the run's (user, event
  key) pairs (`--run-events` per user, half of them already in the ledger) and `attribute_hashes`;
- record: then that chunk's `record_batch` (its users' new events, hashes and outcomes) and `renew_claims`
  (the attempt's lease row), as the sender does; at the end `release_claims`;
- a claim of keys another run holds (refused: checked, timed as `claim_refused`);
- retention: `creator_sync.retention.purge_state` with the 90-day ledger cut-off.

Prints one JSON line: seconds per phase at this size and each projected to 1,000,000 users in proportion
(the per-user work is index lookups and inserts: O(log n) each, and random reads leave the page cache as the
ledger grows, so the projection is a lower bound; run it at two sizes to see how far from linear it is, or at
`--users 1000000` to measure).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
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
    from devtools.celery_stack import scratch_state_store

    with scratch_state_store("cs_bench_state") as store:
        yield store


def _fill(store, users: int, ledger_events: int, now: datetime) -> dict[str, float]:
    """Bulk-load the ledger and the hashes (setup, not part of the measured run). The rows are the same on
    both backends: event ``n`` is user ``n // ledger_events``'s event ``n % ledger_events``, acknowledged
    ``span x ((n x 7919) mod total) / total`` seconds before ``now``, stored by user in user-key order, then
    by event: the order the sender writes them, its chunks coming in user-key order (see `_chunks`)."""
    began = time.perf_counter()
    if store.engine.dialect.name == "sqlite":
        _fill_sqlite(store, users, ledger_events, now)
    else:
        _fill_postgresql(store, users, ledger_events, now)
    return {"fill_s": round(time.perf_counter() - began, 1), "ledger_rows": users * ledger_events}


def _fill_sqlite(store, users: int, ledger_events: int, now: datetime) -> None:
    """One transaction on a connection of its own, without a journal or syncs (a crashed fill is thrown
    away) and with a cache that holds the primary-key index being built, so its random inserts stay in
    memory; the rows come from Python (SQLite has no SHA-256) through ``executemany``."""
    import sqlite3

    from creator_sync.store.schema import acknowledged_events, user_attribute_hashes

    span, total = timedelta(days=91).total_seconds(), users * ledger_events
    by_key = sorted(range(users), key=_uuid)

    def stamp(at: datetime) -> str:
        """The text SQLAlchemy's DateTime writes on SQLite (UTC, no offset), at half its cost per row."""
        return at.isoformat(" ", "microseconds")[:26]

    def ledger_rows():
        for u in by_key:
            user = _uuid(u)
            for j in range(ledger_events):
                n = u * ledger_events + j
                at = now - timedelta(seconds=span * ((n * 7919) % total) / total)
                yield _key("ev", u, j), user, f"old_run_{n % 2160}", f"b{n // BATCH}", stamp(at)

    day_ago = stamp(now - timedelta(days=1))
    hash_rows = ((_uuid(u), _key("h", u), "old_run", day_ago) for u in by_key)
    store.engine.dispose()  # journal_mode=OFF needs the database to itself
    conn = sqlite3.connect(store.engine.url.database, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-4194304", "temp_store=MEMORY"):
            conn.execute(f"PRAGMA {pragma}")  # 4 GiB of cache at most: about the index of 30 M event keys
        conn.execute("BEGIN")
        for table, rows in ((acknowledged_events, ledger_rows()), (user_attribute_hashes, hash_rows)):
            marks = ",".join("?" * len(table.columns))
            conn.executemany(f"INSERT INTO {table.name} VALUES ({marks})", rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # the store's own mode (creator_sync.store.engine)
    finally:
        conn.close()


# The same rows as the SQLite fill, computed by the server (sha256() is PostgreSQL 11+). _PG_USERS: the users
# and their `_uuid`, sorted by it as Python sorts (COLLATE "C"); the events' series depends on the user
# (``u - u``), so the users stay the outer loop and the heap is in the same order (by user key, then event)
_PG_USERS = """(SELECT u, user_key FROM (
        SELECT u,
        left(encode(sha256(convert_to('user:' || u, 'UTF8')), 'hex'), 8) || '-' || lpad(u::text, 9, '0')
               AS user_key FROM generate_series(0::bigint, %(users)s - 1) AS u) AS k
      ORDER BY user_key COLLATE "C") AS us"""
_PG_LEDGER = f"""
INSERT INTO acknowledged_events (event_key, user_key, run_id, batch_key, acked_at)
SELECT encode(sha256(convert_to('ev:' || u || ':' || j, 'UTF8')), 'hex'), us.user_key,
       'old_run_' || ((u * %(e)s + j) %% 2160), 'b' || ((u * %(e)s + j) / %(batch)s),
       %(now)s - make_interval(secs => %(span)s * (((u * %(e)s + j) * 7919) %% %(total)s)::float8 / %(total)s)
FROM {_PG_USERS}, LATERAL generate_series(u - u, %(e)s - 1) AS j
"""
_PG_HASHES = f"""
INSERT INTO user_attribute_hashes (user_key, attr_hash, run_id, acked_at)
SELECT user_key, encode(sha256(convert_to('h:' || u, 'UTF8')), 'hex'), 'old_run', %(now)s - interval '1 day'
FROM {_PG_USERS}
"""


def _fill_postgresql(store, users: int, ledger_events: int, now: datetime) -> None:
    """``INSERT ... SELECT`` computed by the server, into tables whose primary keys and other indexes are
    dropped for the load and built after it (one sort each instead of 30 M random index inserts), then
    ``VACUUM ANALYZE``."""
    args = {
        "users": users,
        "e": ledger_events,
        "batch": BATCH,
        "total": users * ledger_events,
        "span": timedelta(days=91).total_seconds(),
        "now": now,
    }
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET synchronous_commit = off")
        for table, sql in (("acknowledged_events", _PG_LEDGER), ("user_attribute_hashes", _PG_HASHES)):
            cur.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = %s::regclass AND contype = 'p'",
                (table,),
            )
            name, definition = cur.fetchone()
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname <> %s",
                (table, name),
            )
            indexes = cur.fetchall()
            for index, _ in indexes:
                cur.execute(f"DROP INDEX {index}")
            cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            cur.execute(sql, args)
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
            for _, index_definition in indexes:
                cur.execute(index_definition)
        raw.commit()
        # VACUUM as well as ANALYZE: the autovacuum a 30 M-row load triggers would otherwise run during
        # the timed run, and its worker (a backend of this database) would count in the run's CPU seconds.
        # CHECKPOINT: the load's dirty pages in shared_buffers would otherwise be written by the backends
        # of the timed run's first reads as they evict them (one chunk's ledger read at 20,000 users: 60 ms,
        # 27 ms after a CHECKPOINT)
        raw.driver_connection.autocommit = True  # VACUUM and CHECKPOINT run outside a transaction block
        try:
            cur.execute("VACUUM ANALYZE")
            cur.execute("CHECKPOINT")  # superuser or pg_checkpoint: the bench's scratch databases are ours
        finally:
            raw.driver_connection.autocommit = False
    finally:
        raw.close()


def _run_keys(u: int, run_events: int) -> list[str]:
    """The run's event keys of user u: the first half already acknowledged (look-back), the rest new."""
    old = run_events // 2
    return [_key("ev", u, j) for j in range(old)] + [_key("new", u, j) for j in range(run_events - old)]


class _Timer:
    """Seconds per phase, two ways: wall (what this machine took, other processes' load included) and CPU
    (this process plus, on PostgreSQL, the server backends of the bench's database, from /proc: the work
    itself, which other processes' load does not inflate; with the data in the page cache an idle machine
    takes about that long)."""

    def __init__(self, store) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.store, self.pids = store, []
        self.tick = os.sysconf("SC_CLK_TCK")

    def refresh(self) -> None:
        """The server processes of the bench's database (PostgreSQL; once per chunk, outside the timing)."""
        if self.store.engine.dialect.name == "postgresql":
            with self.store.engine.connect() as conn:
                self.pids = list(
                    conn.exec_driver_sql(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    ).scalars()
                )

    def _cpu(self) -> float:
        total = time.process_time()
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # a backend that ended, or a server on another host: its share is not counted
                continue
            total += (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
        return total

    def __call__(self, name: str, fn, *args, **kwargs):
        wall, cpu = time.perf_counter(), self._cpu()
        result = fn(*args, **kwargs)
        self.cpu[name] = self.cpu.get(name, 0.0) + self._cpu() - cpu
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
        return result


def _chunks(users: int, order: str) -> list[list[int]]:
    """The users in chunks of READ_CHUNK. ``key``: in user-key order, as the sender reads users.jsonl (the
    transform writes it in user id order, the uuid that is the user key), so chunk k holds the k-th
    thousand keys; ``input``: in user number order, spread over the whole key space by `_uuid`'s hash
    prefix."""
    ids = sorted(range(users), key=_uuid) if order == "key" else list(range(users))
    return [ids[lo : lo + READ_CHUNK] for lo in range(0, users, READ_CHUNK)]


def _run(store, users: int, run_events: int, timed: _Timer, order: str = "key") -> int:
    """What one full run does to the store, per chunk as the sender: plan (claim, markers and skip list,
    ledger, hashes), record the chunk's answer, renew the lease. Returns the acknowledged events found."""
    from creator_sync.store import OUTCOME_SENT, offboarded_ids

    acked = 0
    new = run_events - run_events // 2
    for ids in _chunks(users, order):  # as the sender: plan a chunk, send it, renew the leases
        timed.refresh()
        lo = ids[0]
        keys = [_uuid(u) for u in ids]
        held = timed("claim", store.claim, RUN_ID, keys, LEASE_S)
        assert len(held) == len(keys)
        run_keys = {u: _run_keys(u, run_events) for u in ids}
        timed("markers", store.in_flight_markers)
        timed("markers", offboarded_ids, keys, store=store)
        acked += len(
            timed("ledger", store.acknowledged_of, [(_uuid(u), k) for u in ids for k in run_keys[u]])
        )
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
    return acked


PLAN = ("claim", "markers", "ledger", "hashes")
RECORD = ("record", "release")


def _figures(timer: _Timer, users: int) -> dict[str, Any]:
    """Per phase and clock (wall ``_s``, CPU ``_cpu_s``): the seconds at this size and, for the run's phases,
    projected to 1,000,000 users in proportion (``_s_1m``: a lower bound, see the module docstring)."""
    out: dict[str, Any] = {}
    scale = 1_000_000 / users
    for clock, seconds in (("s", timer.wall), ("cpu_s", timer.cpu)):
        for name, value in seconds.items():
            out[f"{name}_{clock}"] = round(value, 2)
        out[f"plan_{clock}"] = round(sum(seconds.get(k, 0.0) for k in PLAN), 2)
        out[f"plan_{clock}_1m"] = round(out[f"plan_{clock}"] * scale, 1)
        out[f"claim_{clock}_1m"] = round(seconds.get("claim", 0.0) * scale, 1)
        out[f"record_{clock}_1m"] = round(sum(seconds.get(k, 0.0) for k in RECORD) * scale, 1)
        # renew_claims updates the attempt's one lease row (send_leases), once per batch: linear in batches
        out[f"renew_{clock}_1m"] = round(seconds.get("renew", 0.0) * scale, 1)
        out[f"retention_{clock}_1m"] = round(seconds.get("retention", 0.0) * scale, 1)
        out[f"state_{clock}_1m"] = round(sum(out[f"{k}_{clock}_1m"] for k in ("plan", "record", "renew")), 1)
    return out


def measure(
    backend: str, users: int, ledger_events: int, run_events: int, order: str = "key"
) -> dict[str, Any]:
    from creator_sync.retention import Freed, purge_state

    now = datetime.now(UTC)
    out: dict[str, Any] = {"backend": backend, "users": users, "ledger_events": ledger_events, "order": order}
    out["load_average_start"] = round(os.getloadavg()[0], 1)
    with _store(backend) as store:
        out.update(_fill(store, users, ledger_events, now))
        timed = _Timer(store)
        out["acknowledged_found"] = _run(store, users, run_events, timed, order)
        timed("release", store.release_claims, RUN_ID)
        # the claim refuses keys a live attempt holds: one run's claims, then another run asking for them
        ours = [_uuid(u) for u in range(min(users, READ_CHUNK))]
        assert store.claim(RUN_ID, ours, LEASE_S) == set(ours)
        other = timed("claim_refused", store.claim, "other_run", ours, LEASE_S)
        assert not other, "the claim took keys a live attempt holds"
        store.release_claims(RUN_ID)
        freed = Freed()
        timed.refresh()
        timed("retention", purge_state, store, now - timedelta(days=90), now - timedelta(days=90), freed)
        out["retention_deleted_rows"] = freed.ledger_rows
    out["load_average_end"] = round(os.getloadavg()[0], 1)
    out.update(_figures(timed, users))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--ledger-events", type=int, default=30)
    parser.add_argument("--run-events", type=int, default=2)
    parser.add_argument(
        "--order", choices=["key", "input"], default="key", help="the chunks' order (_chunks)"
    )
    args = parser.parse_args(argv)
    out = measure(args.backend, args.users, args.ledger_events, args.run_events, args.order)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
