"""Where the state database is and how it is written: the engine (SQLite: WAL, a busy timeout and
``BEGIN IMMEDIATE`` for write transactions, so parallel writers queue instead of failing; PostgreSQL via
``CREATOR_SYNC_STATE_URL``), the write transaction, dialect-aware inserts, and the base every part of the
store builds on. Opening a store upgrades its database with the migrations (creator_sync.store.migrate)."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from creator_sync import settings

STATE_URL_ENV = "CREATOR_SYNC_STATE_URL"
DATA_URL_ENV = "CREATOR_SYNC_DATA_URL"  # named in messages; the values come from creator_sync.settings
SQLITE_BUSY_TIMEOUT_MS = 60_000
IN_CHUNK = 500  # bound parameters per IN (...) query
KEY_CHUNK = 10_000  # keys per statement of a key_values() look-up or claim (one bound parameter each)
ROW_CHUNK = 10_000  # rows per statement of a PostgreSQL insert_rows() (one array parameter per column)
ROW_TEXT = 16_000_000  # characters of text per statement of a PostgreSQL insert_rows() (see _row_parts)


def now() -> datetime:
    return datetime.now(UTC)


def default_data_dir() -> Path:
    """`CREATOR_SYNC_DATA_URL` (file://...) if set, else `$AIRFLOW_HOME/data`: the same directory as
    creator_sync.sync.run_context.data_base, which this Airflow-free module cannot import."""
    url = settings.current().data_url or ""
    if not url:
        return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "data"
    if not url.startswith("file://"):
        raise ValueError(
            f"{DATA_URL_ENV}={url} is not a file:// URL, so the default SQLite state DB has no place: use a "
            f"file:// data directory, or set {STATE_URL_ENV} (e.g. postgresql://...) for the state store"
        )
    return Path(urlparse(url).path)


def state_url() -> str:
    return settings.current().state_url or f"sqlite:///{default_data_dir() / 'state.db'}"


def first_per_key(rows: list[dict], *key: str) -> list[dict]:
    """The first row of each key: what a row-by-row ``ON CONFLICT DO NOTHING`` keeps."""
    kept: dict[tuple, dict] = {}
    for row in rows:
        kept.setdefault(tuple(row[k] for k in key), row)
    return list(kept.values())


def last_per_key(rows: list[dict], *key: str) -> list[dict]:
    """The last row of each key: what a row-by-row ``ON CONFLICT DO UPDATE`` (of every column) leaves."""
    return list({tuple(row[k] for k in key): row for row in rows}.values())


def keep_existing(stmt):
    """The ON CONFLICT clause of an insert that keeps the row already there (for ``insert_rows``)."""
    return stmt.on_conflict_do_nothing()


def chunks(items: list, size: int = IN_CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def refuse_nul(keys: Iterable[str]) -> None:
    """ValueError for a key with a NUL character (why: key_values)."""
    if any("\x00" in key for key in keys):
        raise ValueError("a key holds a NUL character: no state store look-up or claim takes it")


def key_values(dialect: str, keys: list[str]):
    """The keys as a table with one column, ``value``, from ONE bound parameter: PostgreSQL
    ``unnest(:keys::VARCHAR[])``, SQLite ``json_each(:keys)`` (a JSON array). Joined to a table by its primary
    key, a look-up is one statement per call, each key one index probe in the order given (sorted keys walk
    the B-tree in order), and neither SQLAlchemy nor the database handles a parameter per key.

    A key with a NUL character is refused (ValueError, the key not named: it may be an email): PostgreSQL text
    cannot hold one, and SQLite's json_each ends the string at it, so "a\\x00b" would be looked up, and
    claimed, as "a", another key. Validation rejects such a uuid before it is sent (INVALID_UUID)."""
    refuse_nul(keys)
    if dialect == "postgresql":
        keys_param = sa.bindparam("keys", keys, type_=postgresql.ARRAY(sa.String))
        return sa.func.unnest(keys_param).table_valued("value").render_derived(name="keys")
    return sa.func.json_each(sa.bindparam("keys", json.dumps(keys))).table_valued("value").alias("keys")


def key_pairs(pairs: list[tuple[str, str]], first: str, second: str):
    """PostgreSQL: the (first, second) key pairs as a table of two columns named `first` and `second`, from
    two bound array parameters (``unnest(:a, :b)``), as key_values() has it for one key (NUL refused)."""
    refuse_nul(k for pair in pairs for k in pair)
    arrays = [
        sa.bindparam(name, [pair[i] for pair in pairs], type_=postgresql.ARRAY(sa.String))
        for i, name in enumerate((f"{first}s", f"{second}s"))
    ]
    return sa.func.unnest(*arrays).table_valued(first, second).render_derived(name="keys")


INCOME_LOCK_KEY = 0x63735F696E636F6D  # "cs_incom": the income state's advisory lock (PostgreSQL)


def income_lock(conn) -> None:
    """Take the income state's lock for the rest of this transaction (PostgreSQL; SQLite's write transaction
    is already the only writer): every write of income items and totals takes it first, and so does the
    offboarding purge that deletes them (creator_sync.store.income, creator_sync.store.offboarding)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": INCOME_LOCK_KEY})


@functools.lru_cache(maxsize=256)
def _unnest_insert(dialect, table: sa.Table, conflict):
    """PostgreSQL's ``INSERT INTO table SELECT * FROM unnest(:a_col1, ...) ON CONFLICT ...``, compiled once
    (SQLAlchemy does not cache an insert from a select with ON CONFLICT: it would compile it per call)."""
    names = [c.name for c in table.columns]
    arrays = [sa.cast(sa.bindparam(f"a_{n}"), postgresql.ARRAY(_unbounded(table.c[n].type))) for n in names]
    source = sa.func.unnest(*arrays).table_valued(*names).render_derived(name="batch")
    stmt = conflict(postgresql.insert(table).from_select(names, sa.select(*[source.c[n] for n in names])))
    return stmt.compile(dialect=dialect)


def _row_parts(rows: list[dict]) -> Iterator[list[dict]]:
    """`rows` in parts of at most ROW_CHUNK rows and ROW_TEXT characters of text (a part holds at least one
    row). psycopg2 sends a statement's arrays as one quoted SQL text, and the driver and the server each hold
    several copies of it while it runs: dead letters' payloads (a user too large to send is over 4.9 MB) in
    one statement would hold gigabytes where a row-by-row write held one row."""
    part: list[dict] = []
    text = 0
    for row in rows:
        size = sum(len(v) for v in row.values() if isinstance(v, str))
        if part and (len(part) >= ROW_CHUNK or text + size > ROW_TEXT):
            yield part
            part, text = [], 0
        part.append(row)
        text += size
    if part:
        yield part


def _one_type(values: list) -> bool:
    """Whether `values` (None aside) are of one Python type, so one typed array holds them: psycopg refuses
    a list of mixed types ("cannot dump lists of mixed types"), and psycopg2's array of 5 and "5" holds one
    key twice where the rows, deduplicated in Python, hold two (PostgreSQL casts both to '5')."""
    return len({type(v) for v in values if v is not None}) <= 1


def _unbounded(column_type):
    """The element type of a column's unnest() array: its text types without a length (see insert_rows)."""
    return sa.Text() if isinstance(column_type, sa.String) else column_type


def aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _wal(cursor) -> None:
    """``PRAGMA journal_mode=WAL``, again while another process holds the database's lock: SQLite answers
    the pragma "database is locked" at once, without its busy handler (seen when processes open a new
    database together while one migrates it), so the wait is here, up to the busy timeout."""
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class StoreBase:
    """The engine and the write transaction every part of the state store uses."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None):
        self.url = url or state_url()
        self.engine = engine or self._engine(self.url)
        from creator_sync.store.migrate import upgrade

        upgrade(self.engine, self.write)

    @staticmethod
    def _engine(url: str) -> Engine:
        if not url.startswith("sqlite"):
            return sa.create_engine(url, pool_pre_ping=True)
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _begin)
            cursor = dbapi_conn.cursor()
            _wal(cursor)
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MB: the ledger's primary-key reads at scale
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            immediate = conn.get_execution_options().get("creator_sync_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite: writers queue on the busy timeout)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(creator_sync_write=True)
            with conn.begin():
                yield conn

    def _insert(self, table: sa.Table):
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise NotImplementedError(dialect)
        return insert(table)

    def insert_rows(self, conn: Connection, table: sa.Table, rows: list[dict], conflict) -> None:
        """INSERT `rows` (dicts with a value for every column of `table`) with ``conflict(insert)`` adding the
        ON CONFLICT clause: a module-level function whose clause takes no value of the call (it reads
        ``excluded``), as its statement is compiled once per table and function. The rows must not repeat a
        conflict key: PostgreSQL refuses a statement that updates one row twice (callers keep the row a
        row-by-row write would have left).

        PostgreSQL: one statement per ROW_CHUNK rows or ROW_TEXT characters of text (_row_parts), each column
        one array parameter that ``unnest()`` turns back into rows, so the server plans one statement, not one
        per row: SQLAlchemy sends an ``INSERT ... ON CONFLICT`` executemany row by row on psycopg2 (its
        insertmanyvalues batching leaves ON CONFLICT out), a round trip and a statement per row. The arrays
        are cast to unbounded element types, so a value too long for its column fails the insert as a row
        would (a cast to VARCHAR(n)[] would cut it). SQLite: executemany (in-process, no round trips)."""
        if not rows:
            return
        if conn.dialect.name != "postgresql":
            for part in chunks(rows):
                conn.execute(conflict(self._insert(table)), part)
            return
        compiled = _unnest_insert(conn.dialect, table, conflict)
        names = [c.name for c in table.columns]
        for part in _row_parts(rows):
            arrays = {f"a_{name}": [row[name] for row in part] for name in names}
            if not all(map(_one_type, arrays.values())):
                for row in part:  # the server casts each value to its column, as a row-by-row write has it
                    conn.execute(conflict(self._insert(table)), row)
                continue
            conn.exec_driver_sql(compiled.string, {**compiled.params, **arrays})

    def clock(self) -> float:
        """Now, in epoch seconds, from the clock every writer of this database shares: PostgreSQL's (workers
        on several hosts compare leases on one clock), the host's for SQLite (one host)."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                return self._clock(conn)
        return time.time()

    @staticmethod
    def _clock(conn: Connection) -> float:
        """``clock()`` read on an open connection (inside a transaction: no second connection)."""
        if conn.dialect.name == "postgresql":
            return float(conn.exec_driver_sql("SELECT EXTRACT(EPOCH FROM clock_timestamp())").scalar())
        return time.time()

    @contextmanager
    def _maybe_write(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.write() as c:
                yield c
