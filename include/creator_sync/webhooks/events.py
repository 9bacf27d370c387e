"""Which InsightIQ webhook events start a targeted sync, and how a payload is read.

Payload (InsightIQ / Phyllo): ``{"id", "event", "name", "data": {"account_id", "user_id", "profile_id" |
"items", "last_updated_time"}}``. Every data event of an account (PROFILES.*, PROFILES_AUDIENCE.*,
CONTENTS.*, CONTENT-GROUPS.* (InsightIQ spells this family with a hyphen), TRANSACTIONS.*, PAYOUTS.*,
BALANCES.*, ACCOUNTS.CONNECTED, SESSION.EXPIRED (the account is re-read: its status changed), and families
added later) queues a sync of that account; the events below only change the connection state and are
recorded without a sync (a disconnected account has nothing new to send).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from creator_sync.vendor_ids import RECORD_ID_PATTERN, is_record_id
from creator_sync.webhooks import bounded_json

NO_SYNC_EVENTS = frozenset({"ACCOUNTS.DISCONNECTED"})

# What our webhook subscribes to at InsightIQ (insightiq_webhooks_setup).
SUBSCRIBED_EVENTS = (
    "ACCOUNTS.CONNECTED",
    "ACCOUNTS.DISCONNECTED",
    "SESSION.EXPIRED",
    "PROFILES.ADDED",
    "PROFILES.UPDATED",
    "PROFILES_AUDIENCE.ADDED",
    "PROFILES_AUDIENCE.UPDATED",
    "CONTENTS.ADDED",
    "CONTENTS.UPDATED",
    "CONTENT-GROUPS.ADDED",
    "CONTENT-GROUPS.UPDATED",
    "TRANSACTIONS.ADDED",
    "TRANSACTIONS.UPDATED",
    "PAYOUTS.ADDED",
    "PAYOUTS.UPDATED",
    "BALANCES.ADDED",
    "BALANCES.UPDATED",
)


class MalformedEvent(ValueError):
    pass


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    event: str
    account_id: str | None
    body_sha256: str

    @property
    def starts_sync(self) -> bool:
        return bool(self.account_id) and self.event not in NO_SYNC_EVENTS


def parse_event(body: bytes) -> WebhookEvent:
    """Validate the shape of a (signature-checked) delivery; raises MalformedEvent."""
    try:
        payload = bounded_json.loads(body)
    except bounded_json.TooDeep as exc:
        raise MalformedEvent(str(exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedEvent("body is not a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event.strip() or len(event) > 100:
        raise MalformedEvent("'event' must be a non-empty string")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("'data' must be an object")
    account_id = data.get("account_id")
    if account_id is not None and not is_record_id(account_id):
        raise MalformedEvent(f"'data.account_id' must be an id matching {RECORD_ID_PATTERN}")
    digest = hashlib.sha256(body).hexdigest()
    event_id = payload.get("id")
    if event_id is None:  # no id: the body itself identifies the delivery (a replay has the same body)
        event_id = f"sha256:{digest}"
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        raise MalformedEvent("'id' must be a string")
    return WebhookEvent(event_id, event.strip().upper(), account_id, digest)
