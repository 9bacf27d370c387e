"""The webhook receiver's part of the state store (``CREATOR_SYNC_STATE_URL``; SQLAlchemy Core, no ORM).

Three small tables, owned by the webhook receiver:

* ``webhook_deliveries``  one row per accepted delivery, keyed by the InsightIQ event id: a replayed
  delivery hits the primary key and does nothing.
* ``webhook_pending_accounts``  accounts waiting for a targeted sync (one row per account, however many
  events arrived for it).
* ``webhook_sync_batches``  claimed sets of accounts and the ``creator_sync`` run that syncs them. At most
  one batch is unsent (``run_id`` NULL) at a time: new claims merge into it.

Claiming uses ``DELETE ... RETURNING`` so two api-server workers never claim the same account twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from creator_sync.store.engine import aware
from creator_sync.store.engine import now as utcnow
from creator_sync.store.schema import account_history, deliveries, pending_accounts, sync_batches

CONNECTED = "ACCOUNTS.CONNECTED"


def make_engine(url: str | None = None) -> sa.Engine:
    """The pipeline state store's engine (WAL + busy timeout + ``BEGIN IMMEDIATE`` writes on SQLite); its
    migrations create the receiver's tables next to ``dead_letters``."""
    from creator_sync.store import StateStore

    return StateStore(url).engine


@dataclass(frozen=True)
class Batch:
    batch_id: str
    account_ids: list[str]
    run_id: str | None
    attempts: int


class WebhookStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` on the state store's SQLite engine."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(creator_sync_write=True)
            with conn.begin():
                yield conn

    # -- deliveries ---------------------------------------------------------------------------------
    def record_delivery(
        self,
        event_id: str,
        event: str,
        account_id: str | None,
        body_sha256: str,
        queue_account: bool,
        now: datetime | None = None,
    ) -> bool:
        """Record one delivery and, when ``queue_account``, mark its account pending - atomically.

        Returns False (and writes nothing) when the event id was recorded before (a replay).
        """
        now = now or utcnow()
        try:
            with self._write() as conn:
                conn.execute(
                    deliveries.insert().values(
                        event_id=event_id,
                        event=event,
                        account_id=account_id,
                        action="queued" if queue_account else "ignored",
                        body_sha256=body_sha256,
                        received_at=now,
                    )
                )
                if queue_account and account_id:
                    self._touch_pending(conn, account_id, now)
                if event == CONNECTED and account_id:
                    self._owe_history(conn, account_id, now)
        except IntegrityError:
            return False
        return True

    @staticmethod
    def _owe_history(conn: sa.Connection, account_id: str, now: datetime) -> None:
        """A connected account's past is owed to the history path (creator_sync.sync.history): a row for an
        account without one; an account with a row taken over in an earlier hour is connected again, and
        its history is owed again up to this connect's hour (creator_sync.store.history.reconnect_update)."""
        from creator_sync.store import history
        from creator_sync.store.history import PENDING, takeover_hour

        values = {
            "account_id": account_id,
            "source": "webhook",
            "first_seen_at": now,
            "takeover_at": takeover_hour(now),
            "status": PENDING,
            "attempts": 0,
        }
        dialect = {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name]
        inserted = conn.execute(dialect.insert(account_history).values(**values).on_conflict_do_nothing())
        if not inserted.rowcount:
            history.reconnect_update(conn, account_id, values["takeover_at"])

    def _touch_pending(self, conn: sa.Connection, account_id: str, now: datetime) -> None:
        values = {"account_id": account_id, "first_seen_at": now, "last_seen_at": now, "events": 1}
        bump = {"last_seen_at": now, "events": pending_accounts.c.events + 1}
        dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(conn.dialect.name)
        if dialect is not None:
            upsert = dialect.insert(pending_accounts).values(**values)
            conn.execute(upsert.on_conflict_do_update(index_elements=["account_id"], set_=bump))
            return
        bumped = conn.execute(
            pending_accounts.update().where(pending_accounts.c.account_id == account_id).values(**bump)
        )
        if not bumped.rowcount:
            conn.execute(pending_accounts.insert().values(**values))

    def queue_accounts(self, account_ids: list[str], now: datetime | None = None) -> int:
        """Mark accounts pending without a delivery (a sync run asks for their targeted runs, e.g. accounts a
        full read does not list: their targeted run's GET tells deleted from skipped); returns how many."""
        now = now or utcnow()
        with self._write() as conn:
            for account_id in account_ids:
                self._touch_pending(conn, account_id, now)
        return len(account_ids)

    def delivery(self, event_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(deliveries.select().where(deliveries.c.event_id == event_id)).mappings().first()
            )
        return dict(row) if row else None

    def count_deliveries(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one()

    # -- pending accounts ---------------------------------------------------------------------------
    def oldest_pending(self) -> datetime | None:
        with self.engine.connect() as conn:
            return aware(conn.execute(sa.select(sa.func.min(pending_accounts.c.first_seen_at))).scalar())

    def pending(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(pending_accounts.c.account_id)).scalars())

    @staticmethod
    def _claim(conn, room: int | None) -> set[str]:
        """Delete and return the pending accounts: all, or the `room` seen first."""
        t = pending_accounts
        if room is None:
            return set(conn.execute(t.delete().returning(t.c.account_id)).scalars())
        if room <= 0:
            return set()
        query = sa.select(t.c.account_id).order_by(t.c.first_seen_at, t.c.account_id).limit(room)
        ids = list(conn.execute(query).scalars())
        for start in range(0, len(ids), 500):
            conn.execute(t.delete().where(t.c.account_id.in_(ids[start : start + 500])))
        return set(ids)

    def claim_pending(self, now: datetime | None = None, limit: int | None = None) -> Batch | None:
        """Move pending accounts into the unsent batch (created if needed); returns that batch. With
        `limit`, the batch holds at most that many accounts: the rest stay pending for the next batch."""
        now = now or utcnow()
        with self._write() as conn:
            unsent = (
                conn.execute(
                    sync_batches.select()
                    .where(sync_batches.c.run_id.is_(None))
                    .order_by(sync_batches.c.created_at)
                )
                .mappings()
                .first()
            )
            held = len(json.loads(unsent["account_ids"])) if unsent is not None else 0
            claimed = self._claim(conn, None if limit is None else limit - held)
            if unsent is None and not claimed:
                return None
            if unsent is None:
                batch_id = uuid.uuid4().hex
                accounts = sorted(claimed)
                conn.execute(
                    sync_batches.insert().values(
                        batch_id=batch_id, created_at=now, account_ids=json.dumps(accounts), attempts=0
                    )
                )
                return Batch(batch_id, accounts, None, 0)
            accounts = sorted(set(json.loads(unsent["account_ids"])) | claimed)
            if claimed:
                conn.execute(
                    sync_batches.update()
                    .where(sync_batches.c.batch_id == unsent["batch_id"])
                    .values(account_ids=json.dumps(accounts))
                )
            return Batch(unsent["batch_id"], accounts, None, unsent["attempts"])

    def has_unsent(self) -> bool:
        with self.engine.connect() as conn:
            query = sa.select(sync_batches.c.batch_id).where(sync_batches.c.run_id.is_(None)).limit(1)
            return conn.execute(query).first() is not None

    def last_sent_batch(self) -> Batch | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sync_batches.select()
                    .where(sync_batches.c.run_id.is_not(None))
                    .order_by(sync_batches.c.triggered_at.desc())
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Batch(row["batch_id"], json.loads(row["account_ids"]), row["run_id"], row["attempts"])

    def mark_sent(self, batch: Batch, run_id: str, now: datetime | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                sync_batches.update()
                .where(sync_batches.c.batch_id == batch.batch_id)
                .values(run_id=run_id, triggered_at=now or utcnow(), attempts=batch.attempts + 1)
            )

    def mark_merged(self, batch: Batch, into: Batch, now: datetime | None = None) -> None:
        """The batch's accounts were added to the still-queued run of ``into``."""
        with self._write() as conn:
            conn.execute(
                sync_batches.update()
                .where(sync_batches.c.batch_id == batch.batch_id)
                .values(run_id=into.run_id, triggered_at=now or utcnow(), attempts=batch.attempts + 1)
            )
            conn.execute(
                sync_batches.update()
                .where(sync_batches.c.batch_id == into.batch_id)
                .values(account_ids=json.dumps(sorted(set(into.account_ids) | set(batch.account_ids))))
            )

    def mark_failed(self, batch: Batch, error: str) -> None:
        with self._write() as conn:
            conn.execute(
                sync_batches.update()
                .where(sync_batches.c.batch_id == batch.batch_id)
                .values(attempts=batch.attempts + 1, last_error=error[:2000])
            )

    def batches(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sync_batches.select().order_by(sync_batches.c.created_at)).mappings()
            return [dict(row) | {"account_ids": json.loads(row["account_ids"])} for row in rows]
