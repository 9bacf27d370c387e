"""The index of users the project sent to Insider One recently: the state store's ``run_users`` rows with
outcome ``sent``. Insider's error callback re-sends a payload *we* submitted, so the receiver stores a
callback user only when its key is in this index (a leaked callback token cannot plant dead letters for
anyone else, which Replay would then send).

``CREATOR_SYNC_CALLBACK_SENT_WITHIN_HOURS`` (default 72) is how recent the send must be: Insider reports a
unification error shortly after the Upsert request, so a callback about an older send is not believed.
``run_users`` rows live as long as the run files (``CREATOR_SYNC_RETAIN_RUN_FILES_DAYS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from creator_sync import settings
from creator_sync.store import OUTCOME_SENT
from creator_sync.store.schema import run_users

SENT_WITHIN_ENV = "CREATOR_SYNC_CALLBACK_SENT_WITHIN_HOURS"
DEFAULT_SENT_WITHIN_HOURS = settings.default("callback_sent_within_hours")
_CHUNK = 500  # bound parameters per IN (...)


def sent_within() -> timedelta:
    return timedelta(hours=settings.load().callback_sent_within_hours)


def sent_since(conn: Connection, user_keys: Iterable[str], since: datetime) -> set[str]:
    """Those of `user_keys` that some run sent at or after `since`."""
    keys = sorted({k for k in user_keys if k})
    t = run_users
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        query = (
            sa.select(t.c.user_key)
            .where(t.c.user_key.in_(keys[start : start + _CHUNK]))
            .where(t.c.outcome == OUTCOME_SENT, t.c.updated_at >= since)
            .distinct()
        )
        found.update(conn.execute(query).scalars())
    return found


def sent_recently(conn: Connection, user_keys: Iterable[str], now: datetime | None = None) -> set[str]:
    """Those of `user_keys` sent within the last CREATOR_SYNC_CALLBACK_SENT_WITHIN_HOURS."""
    return sent_since(conn, user_keys, (now or datetime.now(UTC)) - sent_within())
