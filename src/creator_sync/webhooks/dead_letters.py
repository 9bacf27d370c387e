"""Insider One unification errors -> the pipeline's dead-letter store (``creator_sync.store``).

Each user of a callback becomes one ``dead_letters`` row with reason ``unification_error``; the row's
``run_id`` is ``insider-callback:<sha256 of the user payload>``, so a re-sent identical callback is stored
once, and a later failure of a changed payload is a new row.
"""

from __future__ import annotations

import hashlib

from creator_sync.pipeline.keys import canonical, user_key
from creator_sync.store import StateStore

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


def record_unification_errors(
    users: list[dict], *, reason: str, raw: bytes | None = None, store: StateStore | None = None
) -> int:
    del raw  # every user is stored with its own payload
    store = store or _state_store()
    for run_id, failure in dead_letter_rows(users, reason):
        store.add_dead_letters(run_id, [failure])
    return len(users)
