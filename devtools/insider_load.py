"""Load users into an Insider (sandbox) through creator-sync's one sender (creator_sync.pipeline.send) with a
throw-away in-memory state store: for tests and benchmarks that need users in Insider, not a run's ledger."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from creator_sync.pipeline.send import SendReport, send_users
from creator_sync.store import DeadLetter, StateStore


def upsert_all(hook: Any, users: Iterable[dict], **kwargs: Any) -> tuple[SendReport, list[DeadLetter]]:
    """Send `users` once (batches planned by the hook); returns the sender's report and the dead letters
    (users Insider refused: reason vendor_rejected; too large to send: user_too_large)."""
    state = StateStore("sqlite://")
    report = send_users(users, state=state, hook=hook, run_id="devtools-load", claims=False, **kwargs)
    return report, state.dead_letters(pending_only=False)
