"""State store (SQLAlchemy Core): event ledger, acknowledged attribute hashes, dead letters, what each run
did per user (run_users), per-attempt client counters (run_client_stats), send claims and run reports.

SQLite by default (`sqlite:///<data dir>/state.db`), PostgreSQL via `CREATOR_SYNC_STATE_URL`. On SQLite:
WAL, a busy timeout and `BEGIN IMMEDIATE` for write transactions, so several parallel writers queue
instead of failing. Writes are idempotent (insert-or-ignore, upsert for hashes). Alembic migrations own the
schema (creator_sync.store.migrate): opening a store upgrades its database in place.

Fencing: every task attempt that sends holds its claims and in-flight markers under a fencing token (its
``fence``: run id, try number and a random part). Claims and markers are renewed before every request the
attempt sends; a renewal or a record that finds a claim no longer held by its fence raises ``FencedOut`` and
the attempt stops without sending.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

STATE_URL_ENV = "CREATOR_SYNC_STATE_URL"
DATA_URL_ENV = "CREATOR_SYNC_DATA_URL"
SQLITE_BUSY_TIMEOUT_MS = 60_000
IN_CHUNK = 500  # bound parameters per IN (...) query

metadata = sa.MetaData()
acknowledged_events = sa.Table(
    "acknowledged_events",
    metadata,
    sa.Column("event_key", sa.String(64), primary_key=True),
    sa.Column("user_key", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("batch_key", sa.String(255), nullable=False),
    sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
)
user_attribute_hashes = sa.Table(
    "user_attribute_hashes",
    metadata,
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("attr_hash", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
)
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256(run_id, user_key, reason): idempotent
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("user_key", sa.String(255), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False, index=True),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
)
# A batch whose request went out but whose answer never came back (timeout, killed task): Insider may or
# may not have stored it. The record says how to find out (a probe event) and what to acknowledge if so.
in_flight_batches = sa.Table(
    "in_flight_batches",
    metadata,
    sa.Column("batch_key", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fence", sa.String(255), nullable=True),  # the attempt that sent it (None: the run id)
    sa.Column("lease_until", sa.Float, nullable=True),  # its owner's lease (epoch s); None: long passed
)


# What one run did with each user it planned (the run's figures, summed over task attempts):
# sent / vendor_rejected / user_too_large / unchanged / claimed_elsewhere. A later attempt of the same run
# may change an outcome, except "sent" (its events are in the ledger): see StateStore.record_outcomes.
run_users = sa.Table(
    "run_users",
    metadata,
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("events", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# Per task attempt and vendor: the HTTP client's counters (requests, retries, 429s, ...), so a retried task
# adds its attempts up instead of reporting its last one. Written while the attempt runs.
run_client_stats = sa.Table(
    "run_client_stats",
    metadata,
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("task_key", sa.String(255), primary_key=True),  # task_id[map_index]
    sa.Column("try_number", sa.Integer, primary_key=True),
    sa.Column("vendor", sa.String(32), primary_key=True),
    sa.Column("counters", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# Users a run is about to send. A claim is live while its lease (epoch seconds) has not passed; the sender
# renews its run's leases after every batch and releases them when it is done. See StateStore.claim.
send_claims = sa.Table(
    "send_claims",
    metadata,
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.String(255), nullable=False, index=True),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("fence", sa.String(255), nullable=True),  # the holding attempt (None: the run id)
)


class FencedOut(RuntimeError):
    """This attempt no longer holds the claims it sends under (its lease passed and another attempt or run
    took them over): it must stop without sending."""


@dataclass(frozen=True)
class InFlight:
    """A batch sent without a recorded answer: who sent it and until when that sender's lease runs."""

    batch_key: str
    run_id: str
    fence: str
    lease_until: float
    record: dict


OUTCOME_SENT = "sent"
OUTCOME_UNCHANGED = "unchanged"
OUTCOME_CLAIMED_ELSEWHERE = "claimed_elsewhere"
OUTCOME_OFFBOARDED = "offboarded"  # on the offboarding skip list when its chunk was claimed: never sent


# One row per run and report-producing DAG (creator_sync, replay, offboarding): the run's figures as JSON and
# the human-readable report text. Written by the report step, read by the UI view and the retention DAG.
run_reports = sa.Table(
    "run_reports",
    metadata,
    sa.Column("dag_id", sa.String(250), primary_key=True),
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("figures", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


def now() -> datetime:
    return datetime.now(UTC)


def default_data_dir() -> Path:
    """`CREATOR_SYNC_DATA_URL` (file://...) if set, else `$AIRFLOW_HOME/data`: the same directory as
    creator_sync.sync.run_context.data_base, which this Airflow-free module cannot import."""
    url = os.environ.get(DATA_URL_ENV, "")
    if not url:
        return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "data"
    if not url.startswith("file://"):
        raise ValueError(
            f"{DATA_URL_ENV}={url} is not a file:// URL, so the default SQLite state DB has no place: use a "
            f"file:// data directory, or set {STATE_URL_ENV} (e.g. postgresql://...) for the state store"
        )
    return Path(urlparse(url).path)


def state_url() -> str:
    return os.environ.get(STATE_URL_ENV) or f"sqlite:///{default_data_dir() / 'state.db'}"


@dataclass(frozen=True)
class DeadLetter:
    id: str
    run_id: str
    user_key: str
    reason: str
    detail: str
    payload: dict
    created_at: datetime
    replayed_at: datetime | None


def dead_letter_id(run_id: str, user_key: str, reason: str) -> str:
    return hashlib.sha256(json.dumps([run_id, user_key, reason]).encode()).hexdigest()


def _chunks(items: list, size: int = IN_CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class StateStore:
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
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
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

    # -- reads ---------------------------------------------------------------------------------------
    def acknowledged(self, event_keys: Iterable[str]) -> set[str]:
        return set(self.acknowledged_by(event_keys))

    def acknowledged_by(self, event_keys: Iterable[str]) -> dict[str, str]:
        """Acknowledged event keys among `event_keys` -> the run that sent them."""
        keys, found = list(dict.fromkeys(event_keys)), {}
        t = acknowledged_events
        with self.engine.connect() as conn:
            for part in _chunks(keys):
                rows = conn.execute(sa.select(t.c.event_key, t.c.run_id).where(t.c.event_key.in_(part)))
                found.update({key: run_id for key, run_id in rows})
        return found

    def attribute_hashes(self, user_keys: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        keys, found = list(dict.fromkeys(user_keys)), {}
        t = user_attribute_hashes
        with self.engine.connect() as conn:
            for part in _chunks(keys):
                rows = conn.execute(
                    sa.select(t.c.user_key, t.c.attr_hash, t.c.acked_at).where(t.c.user_key.in_(part))
                )
                found.update({r.user_key: (r.attr_hash, _aware(r.acked_at)) for r in rows})
        return found

    def dead_letters(
        self, *, reasons: Iterable[str] | None = None, pending_only: bool = True, limit: int | None = None
    ) -> list[DeadLetter]:
        t = dead_letters
        query = sa.select(t).order_by(t.c.created_at, t.c.id)
        if reasons is not None:
            query = query.where(t.c.reason.in_(list(reasons)))
        if pending_only:
            query = query.where(t.c.replayed_at.is_(None))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            DeadLetter(
                id=row["id"],
                run_id=row["run_id"],
                user_key=row["user_key"],
                reason=row["reason"],
                detail=row["detail"],
                payload=json.loads(row["payload"]),
                created_at=_aware(row["created_at"]),
                replayed_at=_aware(row["replayed_at"]),
            )
            for row in rows
        ]

    def count_dead_letters(self, run_id: str | None = None) -> dict[str, int]:
        t = dead_letters
        query = sa.select(t.c.reason, sa.func.count()).group_by(t.c.reason)
        if run_id is not None:
            query = query.where(t.c.run_id == run_id)
        with self.engine.connect() as conn:
            return {reason: n for reason, n in conn.execute(query)}

    # -- writes --------------------------------------------------------------------------------------
    def record_batch(
        self,
        *,
        run_id: str,
        batch_key: str,
        events: list[tuple[str, str]],
        hashes: list[tuple[str, str]],
        failures: list[dict],
        outcomes: list[tuple[str, str, int]] | None = None,
        fence: str | None = None,
        keep_marker: bool = False,
    ) -> None:
        """After one 200 response, in ONE transaction: acknowledged events (event_key, user_key),
        attribute hashes of accepted users (user_key, attr_hash), dead letters of failed users, and the
        run's per-user outcomes (user_key, outcome, events). With ``fence``, the transaction first checks
        that the attempt still holds the claims of the users it records (FencedOut otherwise: nothing is
        written, the marker stays for whoever holds them now). ``keep_marker``: the batch's marker stays
        (part of it is still unsettled)."""
        at = now()
        with self.write() as conn:
            if fence is not None:
                self._check_fence(conn, fence, [u for u, _ in hashes] + [o[0] for o in outcomes or []])
            self._ack_events(conn, run_id, batch_key, events, at)
            self._ack_hashes(conn, run_id, hashes, at)
            self._dead_letters(conn, run_id, failures, at)
            self.record_outcomes(run_id, outcomes or [], conn=conn)
            if not keep_marker:
                conn.execute(in_flight_batches.delete().where(in_flight_batches.c.batch_key == batch_key))

    def save_run_report(self, dag_id: str, run_id: str, figures: dict, text: str, ok: bool) -> None:
        """Store (or replace, on a retried report task) the report of one run."""
        row = {"figures": json.dumps(figures, default=str), "text": text, "ok": ok, "created_at": now()}
        with self.write() as conn:
            done = conn.execute(
                run_reports.update()
                .where(run_reports.c.dag_id == dag_id, run_reports.c.run_id == run_id)
                .values(**row)
            )
            if not done.rowcount:
                conn.execute(run_reports.insert().values(dag_id=dag_id, run_id=run_id, **row))

    def run_reports(self, dag_id: str | None = None, limit: int = 50) -> list[dict]:
        """The newest run reports first: ``{"dag_id", "run_id", "figures", "text", "ok", "created_at"}``."""
        query = sa.select(run_reports).order_by(run_reports.c.created_at.desc()).limit(limit)
        if dag_id:
            query = query.where(run_reports.c.dag_id == dag_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {**row, "figures": json.loads(row["figures"]), "created_at": _aware(row["created_at"])}
            for row in rows
        ]

    # -- per-run figures -----------------------------------------------------------------------------
    def record_outcomes(self, run_id: str, rows: list[tuple[str, str, int]], conn=None) -> None:
        """(user_key, outcome, events) of this run; an existing "sent" stays (its events are acknowledged)."""
        if not rows:
            return
        at = now()
        values = [
            {"run_id": run_id, "user_key": k, "outcome": o, "events": int(n), "updated_at": at}
            for k, o, n in rows
        ]
        t = run_users
        with self._maybe_write(conn) as c:
            for part in _chunks(values):
                stmt = self._insert(t)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[t.c.run_id, t.c.user_key],
                    set_={"outcome": stmt.excluded.outcome, "events": stmt.excluded.events, "updated_at": at},
                    where=t.c.outcome != OUTCOME_SENT,
                )
                c.execute(stmt, part)

    def run_user_outcomes(self, run_id: str, user_keys: Iterable[str]) -> dict[str, str]:
        """``{user_key: outcome}`` of these users in one run (users the run never reached are absent)."""
        keys, found = list(dict.fromkeys(user_keys)), {}
        t = run_users
        with self.engine.connect() as conn:
            for part in _chunks(keys):
                rows = conn.execute(
                    sa.select(t.c.user_key, t.c.outcome).where(t.c.run_id == run_id, t.c.user_key.in_(part))
                )
                found.update(dict(rows.all()))
        return found

    def run_outcomes(self, run_id: str) -> dict[str, dict[str, int]]:
        """``{outcome: {"users": n, "events": n}}`` of one run, over all its task attempts."""
        t = run_users
        query = (
            sa.select(t.c.outcome, sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.events), 0))
            .where(t.c.run_id == run_id)
            .group_by(t.c.outcome)
        )
        with self.engine.connect() as conn:
            return {o: {"users": int(n), "events": int(e)} for o, n, e in conn.execute(query)}

    def callback_errors(self, run_id: str, reason: str = "unification_error") -> int:
        """Users this run sent that Insider later reported through the error callback (dead letters with
        `reason` written after the run recorded the user as sent)."""
        u, d = run_users, dead_letters
        query = (
            sa.select(sa.func.count(sa.distinct(d.c.user_key)))
            .select_from(d.join(u, d.c.user_key == u.c.user_key))
            .where(
                u.c.run_id == run_id,
                u.c.outcome == OUTCOME_SENT,
                d.c.reason == reason,
                d.c.created_at >= u.c.updated_at,
            )
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def save_client_stats(
        self, run_id: str, task_key: str, try_number: int, vendor: str, counters: dict
    ) -> None:
        """Store (replace) one task attempt's client counters for a vendor."""
        t = run_client_stats
        row = {
            "run_id": run_id,
            "task_key": task_key,
            "try_number": int(try_number),
            "vendor": vendor,
            "counters": json.dumps({k: v for k, v in counters.items() if isinstance(v, int | float)}),
            "updated_at": now(),
        }
        with self.write() as conn:
            stmt = self._insert(t)
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.run_id, t.c.task_key, t.c.try_number, t.c.vendor],
                set_={"counters": stmt.excluded.counters, "updated_at": stmt.excluded.updated_at},
            )
            conn.execute(stmt, [row])

    def run_client_totals(self, run_id: str) -> dict[str, dict[str, float]]:
        """``{vendor: {counter: sum over every task attempt of the run}}``."""
        t = run_client_stats
        totals: dict[str, dict[str, float]] = {}
        with self.engine.connect() as conn:
            for vendor, counters in conn.execute(
                sa.select(t.c.vendor, t.c.counters).where(t.c.run_id == run_id)
            ):
                into = totals.setdefault(vendor, {})
                for key, value in json.loads(counters).items():
                    into[key] = into.get(key, 0) + value
        return totals

    def latest_client_stats(self, run_id: str, vendor: str) -> dict:
        """The counters of the run's latest task attempt for `vendor` (per-attempt views of a figure)."""
        t = run_client_stats
        query = (
            sa.select(t.c.counters)
            .where(t.c.run_id == run_id, t.c.vendor == vendor)
            .order_by(t.c.try_number.desc(), t.c.updated_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).scalar()
        return json.loads(row) if row else {}

    # -- claims ---------------------------------------------------------------------------------------
    def claim(
        self, run_id: str, user_keys: Iterable[str], lease_s: float, fence: str | None = None
    ) -> set[str]:
        """Claim users for the attempt ``fence`` of ``run_id`` in ONE transaction; returns the keys it holds.

        A key is taken when it is unclaimed, already this fence's, or held under a lease that has passed (a
        live sender renews it before every request). A key held under a live lease by another run, or by
        another attempt of the same run (it may still be sending), is not returned. ``fence`` defaults to the
        run id (callers with one attempt per run)."""
        keys = list(dict.fromkeys(user_keys))
        if not keys:
            return set()
        fence = fence or run_id
        at = time.time()
        until = at + lease_s
        t = send_claims
        mine = sa.func.coalesce(t.c.fence, t.c.run_id) == fence
        held: set[str] = set()
        with self.write() as conn:
            for part in _chunks(keys):
                rows = [{"user_key": k, "run_id": run_id, "lease_until": until, "fence": fence} for k in part]
                conn.execute(self._insert(t).on_conflict_do_nothing(), rows)
                conn.execute(
                    t.update()
                    .where(t.c.user_key.in_(part), sa.or_(mine, t.c.lease_until < at))
                    .values(run_id=run_id, lease_until=until, fence=fence)
                )
                held.update(
                    conn.execute(sa.select(t.c.user_key).where(t.c.user_key.in_(part), mine)).scalars()
                )
        return held

    def claim_holders(self, user_keys: Iterable[str]) -> dict[str, tuple[str, str, float]]:
        """``{user_key: (run_id, fence, lease_until)}`` of the claims on these keys."""
        keys, found = list(dict.fromkeys(user_keys)), {}
        t = send_claims
        with self.engine.connect() as conn:
            for part in _chunks(keys):
                rows = conn.execute(
                    sa.select(t.c.user_key, t.c.run_id, t.c.fence, t.c.lease_until).where(
                        t.c.user_key.in_(part)
                    )
                )
                found.update({r.user_key: (r.run_id, r.fence or r.run_id, r.lease_until) for r in rows})
        return found

    def renew_claims(self, run_id: str, lease_s: float, fence: str | None = None) -> None:
        self.renew(fence or run_id, lease_s)

    def renew(self, fence: str, lease_s: float, user_keys: Iterable[str] = ()) -> None:
        """Extend the lease of every claim and in-flight marker of ``fence`` in one transaction, after
        checking that ``fence`` still holds the claims of ``user_keys``; raises FencedOut otherwise."""
        until = time.time() + lease_s
        with self.write() as conn:
            self._check_fence(conn, fence, user_keys)
            c, f = send_claims, in_flight_batches
            conn.execute(
                c.update().where(sa.func.coalesce(c.c.fence, c.c.run_id) == fence).values(lease_until=until)
            )
            conn.execute(f.update().where(f.c.fence == fence).values(lease_until=until))

    @staticmethod
    def _check_fence(conn: Connection, fence: str | None, user_keys: Iterable[str]) -> None:
        keys = list(dict.fromkeys(user_keys))
        if fence is None or not keys:
            return
        t = send_claims
        held = 0
        for part in _chunks(keys):
            held += conn.execute(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.user_key.in_(part), sa.func.coalesce(t.c.fence, t.c.run_id) == fence)
            ).scalar_one()
        if held < len(keys):
            raise FencedOut(
                f"attempt {fence} no longer holds {len(keys) - held} of the {len(keys)} claims it sends "
                "under (its lease passed and another attempt took them over): stopping without sending"
            )

    def release_claims(self, run_id: str, fence: str | None = None) -> None:
        """Drop the claims of ``fence`` (default: the run id) and end its markers' lease now: the attempt
        sends nothing more, so a marker it leaves may be probed once the settle time has passed."""
        fence = fence or run_id
        at = time.time()
        c, f = send_claims, in_flight_batches
        with self.write() as conn:
            conn.execute(c.delete().where(sa.func.coalesce(c.c.fence, c.c.run_id) == fence))
            conn.execute(
                f.update()
                .where(f.c.fence == fence, sa.or_(f.c.lease_until.is_(None), f.c.lease_until > at))
                .values(lease_until=at)
            )

    def live_claim_runs(self) -> set[str]:
        """Runs that hold at least one claim whose lease has not passed."""
        t = send_claims
        with self.engine.connect() as conn:
            query = sa.select(t.c.run_id).where(t.c.lease_until >= time.time()).distinct()
            return set(conn.execute(query).scalars())

    @contextmanager
    def _maybe_write(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.write() as c:
                yield c

    def mark_in_flight(
        self,
        run_id: str,
        batch_key: str,
        record: dict,
        *,
        fence: str | None = None,
        lease_s: float | None = None,
        user_keys: Iterable[str] = (),
    ) -> None:
        """Write the marker of a batch about to be sent, in the transaction that checks ``fence`` still holds
        the claims of ``user_keys`` (FencedOut otherwise) and renews its leases."""
        until = time.time() + lease_s if lease_s is not None else None
        row = {
            "batch_key": batch_key,
            "run_id": run_id,
            "record": json.dumps(record),
            "created_at": now(),
            "fence": fence or run_id,
            "lease_until": until,
        }
        with self.write() as conn:
            self._check_fence(conn, fence, user_keys)
            conn.execute(self._insert(in_flight_batches).on_conflict_do_nothing(), [row])
            if fence is not None and until is not None:
                c, f = send_claims, in_flight_batches
                conn.execute(c.update().where(c.c.fence == fence).values(lease_until=until))
                conn.execute(f.update().where(f.c.fence == fence).values(lease_until=until))

    def in_flight(self) -> list[tuple[str, str, dict]]:
        """(batch_key, run_id, record) of every batch sent without a recorded answer."""
        return [(m.batch_key, m.run_id, m.record) for m in self.in_flight_markers()]

    def in_flight_markers(self) -> list[InFlight]:
        """Every batch sent without a recorded answer, oldest first."""
        t = in_flight_batches
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.created_at, t.c.batch_key)).mappings().all()
        return [
            InFlight(
                r["batch_key"],
                r["run_id"],
                r["fence"] or r["run_id"],
                r["lease_until"] or 0.0,
                json.loads(r["record"]),
            )
            for r in rows
        ]

    def forget_in_flight(self, batch_key: str) -> None:
        with self.write() as conn:
            conn.execute(in_flight_batches.delete().where(in_flight_batches.c.batch_key == batch_key))

    def add_dead_letters(self, run_id: str, failures: list[dict]) -> None:
        """failures: dicts with user_key, reason, detail, payload (dict or JSON text)."""
        with self.write() as conn:
            self._dead_letters(conn, run_id, failures, now())

    def mark_replayed(self, ids: Iterable[str]) -> None:
        ids, at = list(ids), now()
        with self.write() as conn:
            for part in _chunks(ids):
                conn.execute(dead_letters.update().where(dead_letters.c.id.in_(part)).values(replayed_at=at))

    def _ack_events(self, conn, run_id, batch_key, events, at) -> None:
        rows = [
            {"event_key": k, "user_key": u, "run_id": run_id, "batch_key": batch_key, "acked_at": at}
            for k, u in events
        ]
        for part in _chunks(rows):
            conn.execute(self._insert(acknowledged_events).on_conflict_do_nothing(), part)

    def _ack_hashes(self, conn, run_id, hashes, at) -> None:
        rows = [{"user_key": u, "attr_hash": h, "run_id": run_id, "acked_at": at} for u, h in hashes]
        for part in _chunks(rows):
            stmt = self._insert(user_attribute_hashes)
            stmt = stmt.on_conflict_do_update(
                index_elements=[user_attribute_hashes.c.user_key],
                set_={"attr_hash": stmt.excluded.attr_hash, "run_id": stmt.excluded.run_id, "acked_at": at},
            )
            conn.execute(stmt, part)

    def _dead_letters(self, conn, run_id, failures, at) -> None:
        rows = [
            {
                "id": dead_letter_id(run_id, f["user_key"], f["reason"]),
                "run_id": run_id,
                "user_key": f["user_key"],
                "reason": f["reason"],
                "detail": f.get("detail") or "",
                "payload": f["payload"] if isinstance(f["payload"], str) else json.dumps(f["payload"]),
                "created_at": at,
                "replayed_at": None,
            }
            for f in failures
        ]
        for part in _chunks(rows):
            conn.execute(self._insert(dead_letters).on_conflict_do_nothing(), part)


# -- offboarding -----------------------------------------------------------------------------------------
# Creators who left (docs/offboarding.md). Tables of their own, written by the webhook receiver (requests,
# re-enables) and the creator_offboard DAG; the sync only reads `offboarded_creators` (creator_sync.offboard).
# No PII: offboarded creators and the erasure log are keyed by a hash of the InsightIQ user id; a request
# holds the raw id only until it is done (it is what Insider and InsightIQ are asked about).
offboard_requests = sa.Table(
    "offboard_requests",
    metadata,
    sa.Column("request_key", sa.String(255), primary_key=True),  # user id, or "account:<id>" until resolved
    sa.Column("user_id", sa.String(255), nullable=True),
    sa.Column("account_id", sa.String(255), nullable=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),  # webhook | operator
    sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
)
offboarded_creators = sa.Table(
    "offboarded_creators",
    metadata,
    sa.Column("user_hash", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("offboarded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),  # the disconnect event's own time
    sa.Column("reenabled_at", sa.DateTime(timezone=True), nullable=True),
)
erasure_log = sa.Table(
    "erasure_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("user_hash", sa.String(64), nullable=False, index=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),  # erased | already_gone | failed | reenabled
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("purged", sa.Text, nullable=False, default="{}"),  # JSON counts of what was removed locally
)


def creator_hash(user_id: str) -> str:
    """The only form in which an offboarded creator's id is kept (erasure log, skip list)."""
    return hashlib.sha256(f"creator-sync/offboard:{user_id}".encode()).hexdigest()


def _mentions(payload: str, user_id: str) -> bool:
    """Is ``user_id`` this dead letter's user (its identifiers.uuid, or the user_key of a stored record)?"""
    try:
        value = json.loads(payload)
    except ValueError:
        return False
    users = value.get("users") if isinstance(value, dict) and "users" in value else [value]
    for user in users if isinstance(users, list) else []:
        if isinstance(user, dict):
            ids = user.get("identifiers") or {}
            if (isinstance(ids, dict) and ids.get("uuid") == user_id) or user.get("user_key") == user_id:
                return True
    return False


class OffboardingState:
    """The offboarding section of the state store: requests, the skip list, the purge, the erasure log."""

    def __init__(self, store: StateStore):
        self.store = store

    # -- requests -----------------------------------------------------------------------------------
    def queue(
        self,
        *,
        user_id: str | None,
        account_id: str | None,
        reason: str,
        source: str,
        event_time: datetime | None = None,
    ) -> str:
        """Queue a creator for creator_offboard (idempotent per user / unresolved account)."""
        if not user_id and not account_id:
            raise ValueError("an offboarding request needs a user_id or an account_id")
        key = user_id or f"account:{account_id}"
        row = {
            "request_key": key,
            "user_id": user_id,
            "account_id": account_id,
            "reason": reason,
            "source": source,
            "event_time": event_time,
            "queued_at": now(),
            "attempts": 0,
            "last_error": None,
        }
        with self.store.write() as conn:
            stmt = self.store._insert(offboard_requests)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[offboard_requests.c.request_key],
                    set_={"reason": stmt.excluded.reason, "event_time": stmt.excluded.event_time},
                ),
                [row],
            )
        return key

    def requests(self) -> list[dict]:
        t = offboard_requests
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.queued_at, t.c.request_key)).mappings().all()
        return [
            {**r, "event_time": _aware(r["event_time"]), "queued_at": _aware(r["queued_at"])} for r in rows
        ]

    def cancel(self, user_id: str) -> int:
        """A creator came back before creator_offboard ran: their pending requests go."""
        with self.store.write() as conn:
            return conn.execute(
                offboard_requests.delete().where(offboard_requests.c.user_id == user_id)
            ).rowcount

    def finish(self, request_key: str) -> None:
        with self.store.write() as conn:
            conn.execute(offboard_requests.delete().where(offboard_requests.c.request_key == request_key))

    def failed(self, request_key: str, error: str) -> None:
        t = offboard_requests
        with self.store.write() as conn:
            conn.execute(
                t.update()
                .where(t.c.request_key == request_key)
                .values(attempts=t.c.attempts + 1, last_error=error[:2000])
            )

    # -- the skip list ------------------------------------------------------------------------------
    def mark_offboarded(self, user_id: str, reason: str, left_at: datetime | None = None) -> None:
        """From now on creator_sync skips this creator (until re-enabled)."""
        row = {
            "user_hash": creator_hash(user_id),
            "reason": reason,
            "offboarded_at": now(),
            "left_at": left_at,
            "reenabled_at": None,
        }
        with self.store.write() as conn:
            stmt = self.store._insert(offboarded_creators)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[offboarded_creators.c.user_hash],
                    set_={
                        "reason": stmt.excluded.reason,
                        "offboarded_at": stmt.excluded.offboarded_at,
                        "left_at": stmt.excluded.left_at,
                        "reenabled_at": None,
                    },
                ),
                [row],
            )

    def reenable(self, user_id: str, event_time: datetime | None = None, run_id: str = "webhook") -> bool:
        """ACCOUNTS.CONNECTED: sync the creator again. An event older than the disconnect that offboarded
        them (webhooks can arrive out of order) does not re-enable. Returns True when re-enabled."""
        t, key, at = offboarded_creators, creator_hash(user_id), now()
        with self.store.write() as conn:
            row = conn.execute(sa.select(t).where(t.c.user_hash == key)).mappings().first()
            if row is None or row["reenabled_at"] is not None:
                return False
            left_at = _aware(row["left_at"])
            if event_time is not None and left_at is not None and _aware(event_time) <= left_at:
                return False
            conn.execute(t.update().where(t.c.user_hash == key).values(reenabled_at=at))
            conn.execute(
                erasure_log.insert().values(
                    at=at,
                    run_id=run_id,
                    user_hash=key,
                    reason="accounts_connected",
                    outcome="reenabled",
                    detail="ACCOUNTS.CONNECTED: synced again from the next creator_sync run",
                    purged="{}",
                )
            )
        return True

    def offboarded_hashes(self) -> set[str]:
        t = offboarded_creators
        with self.store.engine.connect() as conn:
            return set(conn.execute(sa.select(t.c.user_hash).where(t.c.reenabled_at.is_(None))).scalars())

    def is_offboarded(self, user_id: str) -> bool:
        return creator_hash(user_id) in self.offboarded_hashes()

    # -- the purge ----------------------------------------------------------------------------------
    def purge(self, user_id: str, *, dry_run: bool = False) -> dict[str, int]:
        """Remove the creator's attribute hash, their part of unanswered batches (hash entries; probes keep
        only the uuid) and their dead letters. Acknowledged event keys stay: hashes without PII that keep
        events Insider already holds from being sent twice after a re-enable. Returns counts."""
        if dry_run:
            with self.store.engine.connect() as conn:
                return self._footprint(conn, user_id)[0]
        with self.store.write() as conn:
            counts, letters, changed = self._footprint(conn, user_id)
            h = user_attribute_hashes
            conn.execute(h.delete().where(h.c.user_key == user_id))
            for part in _chunks(letters):
                conn.execute(dead_letters.delete().where(dead_letters.c.id.in_(part)))
            for key, rec in changed:
                conn.execute(
                    in_flight_batches.update()
                    .where(in_flight_batches.c.batch_key == key)
                    .values(record=json.dumps(rec))
                )
        return counts

    @staticmethod
    def _footprint(conn, user_id: str) -> tuple[dict[str, int], list[str], list[tuple[str, dict]]]:
        h, d, f = user_attribute_hashes, dead_letters, in_flight_batches
        hashes = conn.execute(
            sa.select(sa.func.count()).select_from(h).where(h.c.user_key == user_id)
        ).scalar_one()
        candidates = conn.execute(
            sa.select(d.c.id, d.c.user_key, d.c.payload).where(
                sa.or_(d.c.user_key == user_id, d.c.payload.contains(user_id, autoescape=True))
            )
        )
        letters = [r.id for r in candidates if r.user_key == user_id or _mentions(r.payload, user_id)]
        changed = []
        for key, record in conn.execute(sa.select(f.c.batch_key, f.c.record)):
            rec = json.loads(record)
            stripped = _strip_in_flight(rec, user_id) if user_id in record else rec
            if stripped != rec:
                changed.append((key, stripped))
        counts = {"attribute_hashes": hashes, "in_flight_batches": len(changed), "dead_letters": len(letters)}
        return counts, letters, changed

    # -- the erasure log ----------------------------------------------------------------------------
    def log(
        self, *, run_id: str, user_id: str, reason: str, outcome: str, detail: str = "", purged=None
    ) -> None:
        with self.store.write() as conn:
            conn.execute(
                erasure_log.insert().values(
                    at=now(),
                    run_id=run_id,
                    user_hash=creator_hash(user_id),
                    reason=reason,
                    outcome=outcome,
                    detail=detail,
                    purged=json.dumps(purged or {}),
                )
            )

    def erasure_log(self, limit: int = 100) -> list[dict]:
        t = erasure_log
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)).mappings()
            return [{**r, "at": _aware(r["at"]), "purged": json.loads(r["purged"])} for r in rows]


def _strip_in_flight(record: dict, user_id: str) -> dict:
    """An unanswered batch without the creator's attribute hash and personal data: their copy of the user is
    reduced to the uuid and the events (Insider keeps the uuid as the last identifier, so a probe still finds
    the batch's events). Equal to ``record`` when the creator is not in it."""

    def reduced(probe: dict) -> dict:
        return {**probe, "identifiers": {"uuid": user_id}} if probe.get("user_key") == user_id else probe

    if record.get("v") == 2:
        users = []
        for entry in record["users"]:
            if entry["user_key"] == user_id:
                events = entry["user"].get("events")
                user = {"identifiers": {"uuid": user_id}, **({"events": events} if events else {})}
                entry = {**entry, "attr_hash": "", "user": user}
            users.append(entry)
        return {**record, "users": users}
    out = dict(record)
    out["hashes"] = [h for h in record.get("hashes") or [] if h[0] != user_id]
    if "hashes" not in record and not out["hashes"]:
        del out["hashes"]
    if record.get("probes"):
        out["probes"] = [reduced(p) for p in record["probes"]]
    if record.get("probe"):
        out["probe"] = reduced(record["probe"])
    return out
