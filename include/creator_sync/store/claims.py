"""Claims and in-flight markers, under fencing tokens.

A run claims the users it is about to send; a claim is live while its lease (epoch seconds) has not passed.
Every task attempt that sends holds its claims and in-flight markers under its own fencing token (its
``fence``: run id, try number and a random part). Claims and markers are renewed before every request the
attempt sends; a renewal or a record that finds a claim no longer held by its fence raises ``FencedOut`` and
the attempt stops without sending. An in-flight marker is a batch sent without a recorded answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from creator_sync.store.engine import KEY_CHUNK, StoreBase, chunks, key_values, now
from creator_sync.store.schema import in_flight_batches, send_claims, send_leases

# PostgreSQL: one transaction-level advisory lock that every claim and every fence check takes first. Under
# READ COMMITTED a claim's takeover and another attempt's fence check would otherwise each read the other's
# rows without waiting (a renewal committed while a takeover waited is not seen by its lease subquery; a
# fence check passes while a takeover commits): serialized, each sees the other's committed work, as SQLite's
# BEGIN IMMEDIATE gives on that backend.
CLAIMS_LOCK_KEY = 0x63735F636C61696D  # "cs_claim"


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


class Claims(StoreBase):
    def _lease(self, conn: Connection, fence: str, run_id: str, until: float) -> None:
        """Write (or extend) the lease row of ``fence``."""
        stmt = self._insert(send_leases)
        conn.execute(
            stmt.on_conflict_do_update(index_elements=[send_leases.c.fence], set_={"lease_until": until}),
            [{"fence": fence, "run_id": run_id, "lease_until": until}],
        )

    def claim(
        self, run_id: str, user_keys: Iterable[str], lease_s: float, fence: str | None = None
    ) -> set[str]:
        """Claim users for the attempt ``fence`` of ``run_id`` in ONE transaction; returns the keys it holds.

        A key is taken when it is unclaimed, already this fence's, or held under a lease that has passed (a
        live sender renews its fence's lease before every request). A key held under a live lease by another
        run, or by another attempt of the same run (it may still be sending), is not returned. ``fence``
        defaults to the run id (callers with one attempt per run)."""
        keys = sorted(set(user_keys))
        if not keys:
            return set()
        fence = fence or run_id
        t = send_claims
        with self.write() as conn:
            _serialize(conn)
            at = self._clock(conn)
            until = at + lease_s
            self._lease(conn, fence, run_id, until)
            # one statement per KEY_CHUNK keys: insert, or take over a claim that is this fence's or whose
            # lease has passed; RETURNING names the rows inserted or taken over, i.e. the keys now held. The
            # keys come as one bound parameter (key_values), in sorted order.
            held: set[str] = set()
            for part in chunks(keys, KEY_CHUNK):
                values = key_values(conn.dialect.name, part)
                rows = sa.select(values.c.value, sa.literal(run_id), sa.literal(until), sa.literal(fence))
                # SQLite: a WHERE tells its parser the ON CONFLICT that follows belongs to the INSERT
                stmt = self._insert(t).from_select(
                    [t.c.user_key, t.c.run_id, t.c.lease_until, t.c.fence], rows.where(sa.true())
                )
                stmt = stmt.on_conflict_do_update(
                    index_elements=[t.c.user_key],
                    set_={"run_id": run_id, "lease_until": until, "fence": fence},
                    where=sa.or_(sa.func.coalesce(t.c.fence, t.c.run_id) == fence, _effective_lease() < at),
                ).returning(t.c.user_key)
                held.update(conn.execute(stmt).scalars())
        return held

    def claim_holders(self, user_keys: Iterable[str]) -> dict[str, tuple[str, str, float]]:
        """``{user_key: (run_id, fence, lease_until)}`` of the claims on these keys (the fence's lease)."""
        keys, found = list(dict.fromkeys(user_keys)), {}
        t = send_claims
        with self.engine.connect() as conn:
            for part in chunks(keys):
                rows = conn.execute(
                    sa.select(t.c.user_key, t.c.run_id, t.c.fence, _effective_lease().label("lease")).where(
                        t.c.user_key.in_(part)
                    )
                )
                found.update({r.user_key: (r.run_id, r.fence or r.run_id, r.lease) for r in rows})
        return found

    def renew_claims(self, run_id: str, lease_s: float, fence: str | None = None) -> None:
        self.renew(fence or run_id, lease_s)

    def renew(self, fence: str, lease_s: float, user_keys: Iterable[str] = ()) -> None:
        """Extend the lease of ``fence`` (one row: its claims and in-flight markers) in one transaction,
        after checking that ``fence`` still holds the claims of ``user_keys``; raises FencedOut otherwise."""
        until = self.clock() + lease_s
        with self.write() as conn:
            self._check_fence(conn, fence, user_keys)
            leases, f = send_leases, in_flight_batches
            conn.execute(leases.update().where(leases.c.fence == fence).values(lease_until=until))
            conn.execute(f.update().where(f.c.fence == fence).values(lease_until=until))

    @staticmethod
    def _check_fence(conn: Connection, fence: str | None, user_keys: Iterable[str]) -> None:
        keys = list(dict.fromkeys(user_keys))
        if fence is None or not keys:
            return
        _serialize(conn)
        t = send_claims
        held = 0
        for part in chunks(keys):
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
        """Drop the claims and the lease of ``fence`` (default: the run id) and end its markers' lease now:
        the attempt sends nothing more, so a marker it leaves may be probed once the settle time has
        passed."""
        fence = fence or run_id
        at = self.clock()
        c, f = send_claims, in_flight_batches
        with self.write() as conn:
            conn.execute(
                c.delete().where(
                    sa.or_(c.c.fence == fence, sa.and_(c.c.fence.is_(None), c.c.run_id == fence))
                )
            )
            conn.execute(send_leases.delete().where(send_leases.c.fence == fence))
            conn.execute(
                f.update()
                .where(f.c.fence == fence, sa.or_(f.c.lease_until.is_(None), f.c.lease_until > at))
                .values(lease_until=at)
            )

    def release_keys(self, fence: str, user_keys: Iterable[str]) -> None:
        """Drop the claims of ``fence`` on ``user_keys`` only (its lease and its other claims stay): users the
        attempt claimed but does not send now."""
        keys, c = sorted(set(user_keys)), send_claims
        with self.write() as conn:
            for part in chunks(keys):
                conn.execute(
                    c.delete().where(c.c.user_key.in_(part), sa.func.coalesce(c.c.fence, c.c.run_id) == fence)
                )

    def live_claim_runs(self) -> set[str]:
        """Runs that hold at least one claim whose lease has not passed."""
        t = send_claims
        with self.engine.connect() as conn:
            query = sa.select(t.c.run_id).where(_effective_lease() >= self.clock()).distinct()
            return set(conn.execute(query).scalars())

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
        until = self.clock() + lease_s if lease_s is not None else None
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
                leases, f = send_leases, in_flight_batches
                conn.execute(leases.update().where(leases.c.fence == fence).values(lease_until=until))
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


def _serialize(conn: Connection) -> None:
    """Take the claims lock for the rest of this transaction (PostgreSQL; SQLite's write transaction is
    already the only writer)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIMS_LOCK_KEY})


def _effective_lease():
    """A claim's lease: its fence's lease row, or (a claim 0.1.0 wrote, without a lease row) its own.

    The subquery names the claim's columns as ``send_claims.<column>`` so that it correlates with the
    ``send_claims`` row of the enclosing statement, an ``INSERT ... ON CONFLICT DO UPDATE`` included (where
    SQLAlchemy would not correlate a table column and would add ``send_claims`` to the subquery's FROM)."""
    c, leases = send_claims, send_leases
    owner = sa.func.coalesce(sa.literal_column(f"{c.name}.fence"), sa.literal_column(f"{c.name}.run_id"))
    fence_lease = sa.select(leases.c.lease_until).where(leases.c.fence == owner).scalar_subquery()
    return sa.func.coalesce(fence_lease, c.c.lease_until)
