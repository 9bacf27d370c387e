"""Dead letters: records that could not be sent, kept with their reason and payload until replayed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from creator_sync.store.engine import StoreBase, aware, chunks, first_per_key, keep_existing, now
from creator_sync.store.schema import dead_letters


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
    """sha256(run id, user key, reason): writing the same letter twice keeps one."""
    return hashlib.sha256(json.dumps([run_id, user_key, reason]).encode()).hexdigest()


class DeadLetters(StoreBase):
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
                created_at=aware(row["created_at"]),
                replayed_at=aware(row["replayed_at"]),
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

    def add_dead_letters(self, run_id: str, failures: list[dict]) -> None:
        """failures: dicts with user_key, reason, detail, payload (dict or JSON text)."""
        with self.write() as conn:
            self._dead_letters(conn, run_id, failures, now())

    def mark_replayed(self, ids: Iterable[str]) -> None:
        ids, at = list(ids), now()
        with self.write() as conn:
            for part in chunks(ids):
                conn.execute(dead_letters.update().where(dead_letters.c.id.in_(part)).values(replayed_at=at))

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
        self.insert_rows(conn, dead_letters, first_per_key(rows, "id"), keep_existing)
