"""The ledger: events Insider acknowledged (per event key) and the attribute hash last acknowledged per user,
written with a batch's dead letters and per-user outcomes in one transaction per answer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from creator_sync.store.engine import (
    KEY_CHUNK,
    StoreBase,
    aware,
    chunks,
    first_per_key,
    keep_existing,
    key_pairs,
    key_values,
    last_per_key,
    now,
)
from creator_sync.store.schema import acknowledged_events, in_flight_batches, user_attribute_hashes


class Ledger(StoreBase):
    def acknowledged(self, event_keys: Iterable[str]) -> set[str]:
        return set(self.acknowledged_by(event_keys))

    def acknowledged_by(self, event_keys: Iterable[str]) -> dict[str, str]:
        """Acknowledged event keys among `event_keys` -> the run that sent them (one statement per
        KEY_CHUNK keys: the keys, sorted, joined to the ledger's primary key)."""
        t, found = acknowledged_events, {}
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(event_keys)), KEY_CHUNK):
                keys = key_values(conn.dialect.name, part)
                query = sa.select(t.c.event_key, t.c.run_id).select_from(
                    keys.join(t, t.c.event_key == keys.c.value)
                )
                found.update({key: run_id for key, run_id in conn.execute(query)})
        return found

    def acknowledged_of(self, user_events: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Acknowledged events among (user_key, event_key) pairs -> the run that sent them: what
        acknowledged_by() answers for the pairs' event keys, as a ledger row holds the user its event key is
        made from (event_key hashes the uuid, and record_batch writes each event with that user: the sender
        plans and records the same pairs). PostgreSQL: one statement per KEY_CHUNK pairs, sorted, joined to
        ix_acknowledged_events_user_key (which holds run_id: index-only), so a chunk of users in user-key
        order reads one stretch of the index instead of a random primary-key page per event. SQLite: by
        event key (acknowledged_by), its primary key. A user key longer than the column is read by event key
        on PostgreSQL too: PostgreSQL stores such a key cut to the column's length when the characters past
        it are spaces (no error), so the row does not hold the key the pair names."""
        pairs = sorted(set(user_events))
        if self.engine.dialect.name != "postgresql":
            return self.acknowledged_by(event for _, event in pairs)
        t, width = acknowledged_events, acknowledged_events.c.user_key.type.length
        long = [event for user, event in pairs if len(user) > width]
        found = self.acknowledged_by(long) if long else {}
        pairs = [(user, event) for user, event in pairs if len(user) <= width]
        with self.engine.connect() as conn:
            for part in chunks(pairs, KEY_CHUNK):
                keys = key_pairs(part, "user_key", "event_key")
                on = sa.and_(t.c.user_key == keys.c.user_key, t.c.event_key == keys.c.event_key)
                query = sa.select(t.c.event_key, t.c.run_id).select_from(keys.join(t, on))
                found.update({key: run_id for key, run_id in conn.execute(query)})
        return found

    def attribute_hashes(self, user_keys: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        t, found = user_attribute_hashes, {}
        with self.engine.connect() as conn:
            for part in chunks(sorted(set(user_keys)), KEY_CHUNK):
                keys = key_values(conn.dialect.name, part)
                query = sa.select(t.c.user_key, t.c.attr_hash, t.c.acked_at).select_from(
                    keys.join(t, t.c.user_key == keys.c.value)
                )
                found.update({key: (attr_hash, aware(at)) for key, attr_hash, at in conn.execute(query)})
        return found

    def forget_attribute_hashes(self, user_keys: Iterable[str]) -> int:
        """Drop the acknowledged attribute hash of `user_keys`: Insider may no longer hold what it says (an
        attribute deleted after that upsert, creator_sync.pipeline.clear), so the next send of each user is
        not skipped as unchanged. Returns how many it dropped."""
        t, dropped = user_attribute_hashes, 0
        with self.write() as conn:
            for part in chunks(sorted(set(user_keys))):
                dropped += conn.execute(t.delete().where(t.c.user_key.in_(part))).rowcount or 0
        return dropped

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

    def _ack_events(self, conn, run_id, batch_key, events, at) -> None:
        rows = [
            {"event_key": k, "user_key": u, "run_id": run_id, "batch_key": batch_key, "acked_at": at}
            for k, u in events
        ]
        self.insert_rows(conn, acknowledged_events, first_per_key(rows, "event_key"), keep_existing)

    def _ack_hashes(self, conn, run_id, hashes, at) -> None:
        rows = [{"user_key": u, "attr_hash": h, "run_id": run_id, "acked_at": at} for u, h in hashes]
        self.insert_rows(conn, user_attribute_hashes, last_per_key(rows, "user_key"), _replace_hash)


def _replace_hash(stmt):
    return stmt.on_conflict_do_update(
        index_elements=[user_attribute_hashes.c.user_key],
        set_={k: stmt.excluded[k] for k in ("attr_hash", "run_id", "acked_at")},
    )
