"""The offboarding part of the state store: requests, the skip list, the purge, the erasure log. No PII:
offboarded creators and the erasure log are keyed by a hash of the InsightIQ user id; a request holds the
raw id only until it is done (it is what Insider and InsightIQ are asked about)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from creator_sync.store.engine import StoreBase, aware, chunks, income_lock, now
from creator_sync.store.schema import (
    dead_letters,
    erasure_log,
    in_flight_batches,
    income_items,
    income_totals,
    offboard_requests,
    offboarded_creators,
    user_attribute_hashes,
)


def creator_hash(user_id: str) -> str:
    """The only form in which an offboarded creator's id is kept (erasure log, skip list)."""
    return hashlib.sha256(f"creator-sync/offboard:{user_id}".encode()).hexdigest()


def _mentions(payload: str, user_id: str) -> bool:
    """Is ``user_id`` this dead letter's user (its identifiers.uuid, the user_key of a stored record, or the
    `user.id` of an InsightIQ record: an invalid income item's)?"""
    try:
        value = json.loads(payload)
    except ValueError:
        return False
    users = value.get("users") if isinstance(value, dict) and "users" in value else [value]
    for user in users if isinstance(users, list) else []:
        if isinstance(user, dict):
            ids = user.get("identifiers") or {}
            if (isinstance(ids, dict) and ids.get("uuid") == user_id) or user_id in (
                user.get("user_key"),
                user.get("user.id"),
            ):
                return True
    return False


class OffboardingState:
    """The offboarding section of the state store: requests, the skip list, the purge, the erasure log."""

    def __init__(self, store: StoreBase):
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
        return [{**r, "event_time": aware(r["event_time"]), "queued_at": aware(r["queued_at"])} for r in rows]

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
            left_at = aware(row["left_at"])
            if event_time is not None and left_at is not None and aware(event_time) <= left_at:
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
        only the uuid), their dead letters and their income items and totals (creator_sync.store.income).
        Acknowledged event keys stay: hashes without PII that keep events Insider already holds from being
        sent twice after a re-enable. Returns counts."""
        if dry_run:
            with self.store.engine.connect() as conn:
                return self._footprint(conn, user_id)[0]
        with self.store.write() as conn:
            income_lock(conn)  # an income write that began before it keeps nothing after it
            counts, letters, changed = self._footprint(conn, user_id)
            h = user_attribute_hashes
            conn.execute(h.delete().where(h.c.user_key == user_id))
            conn.execute(income_items.delete().where(income_items.c.user_key == user_id))
            conn.execute(income_totals.delete().where(income_totals.c.user_key == user_id))
            for part in chunks(letters):
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
        income = conn.execute(
            sa.select(sa.func.count()).select_from(income_items).where(income_items.c.user_key == user_id)
        ).scalar_one()
        counts = {
            "attribute_hashes": hashes,
            "in_flight_batches": len(changed),
            "dead_letters": len(letters),
            "income_items": income,
        }
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
            return [{**r, "at": aware(r["at"]), "purged": json.loads(r["purged"])} for r in rows]


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


def offboarded_ids(candidates: Iterable[str], store: StoreBase | None = None) -> set[str]:
    """The one place the sync asks whether a creator is offboarded: the ids among ``candidates``
    (InsightIQ user ids) that are offboarded and not re-enabled."""
    if store is None:
        from creator_sync.store import StateStore

        store = StateStore()
    hashes = OffboardingState(store).offboarded_hashes()
    if not hashes:
        return set()
    return {c for c in candidates if creator_hash(str(c)) in hashes}
