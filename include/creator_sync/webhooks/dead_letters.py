"""Insider One unification errors -> the pipeline's dead-letter store (``creator_sync.store``).

Each user of a callback becomes one ``dead_letters`` row with reason ``unification_error``; the row's
``run_id`` is ``insider-callback:<sha256 of the user payload>``, so a re-sent identical callback is stored
once, and a later failure of a changed payload is a new row. Only users the project sent recently are
stored (creator_sync.webhooks.sent_index), all rows of one callback in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from creator_sync.pipeline.keys import canonical, user_key
from creator_sync.store import StateStore, dead_letter_id
from creator_sync.store.engine import IN_CHUNK
from creator_sync.store.schema import dead_letters
from creator_sync.webhooks.sent_index import sent_recently, sent_within

log = logging.getLogger(__name__)

RUN_ID_PREFIX = "insider-callback:"

_store: StateStore | None = None


def _state_store() -> StateStore:
    global _store
    if _store is None:
        _store = StateStore()
    return _store


def dead_letter_rows(users: list[dict], reason: str) -> list[tuple[str, dict]]:
    """(run_id, failure) per user, as ``StateStore.add_dead_letters`` expects the failure."""
    rows = []
    for user in users:
        digest = hashlib.sha256(canonical(user).encode()).hexdigest()[:32]
        key = user_key(user) or f"payload:{digest}"
        detail = "Insider One reported a unification error through error_callback_endpoint"
        rows.append(
            (
                f"{RUN_ID_PREFIX}{digest}",
                {"user_key": key, "reason": reason, "detail": detail, "payload": user},
            )
        )
    return rows


def _insert_ignore(conn: Connection, rows: list[dict]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for start in range(0, len(rows), IN_CHUNK):
        conn.execute(insert(dead_letters).on_conflict_do_nothing(), rows[start : start + IN_CHUNK])


def _row(run_id: str, failure: dict, at: datetime) -> dict:
    return {
        "id": dead_letter_id(run_id, failure["user_key"], failure["reason"]),
        "run_id": run_id,
        "user_key": failure["user_key"],
        "reason": failure["reason"],
        "detail": failure["detail"],
        "payload": json.dumps(failure["payload"]),
        "created_at": at,
        "replayed_at": None,
    }


def record_unification_errors(
    users: list[dict], *, reason: str, raw: bytes | None = None, store: StateStore | None = None
) -> int:
    """Store the users of one callback that the project sent recently (sent_index), all in one transaction;
    returns how many were stored. The others are dropped: Insider re-sends only what we submitted."""
    del raw  # every user is stored with its own payload
    store = store or _state_store()
    rows = dead_letter_rows(users, reason)
    at = datetime.now(UTC)
    with store.engine.connect() as conn:  # read outside the write lock: the pipeline's writers keep going
        known = sent_recently(conn, (failure["user_key"] for _, failure in rows), now=at)
    accepted = [_row(run_id, failure, at) for run_id, failure in rows if failure["user_key"] in known]
    with store.write() as conn:
        _insert_ignore(conn, accepted)
    if len(accepted) < len(users):
        log.warning(
            "Dropped %d of %d callback user(s) that no run sent in the last %s",
            len(users) - len(accepted),
            len(users),
            sent_within(),
        )
    return len(accepted)
