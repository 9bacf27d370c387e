"""InsightIQ webhook registry and delivery: body signed with header ``Webhook-Signatures``
(``Phyllo-Signature`` under the ``other_signature_header`` reading) = hex HMAC-SHA256(raw body,
key=client secret); async delivery with a few retries. A delivery that fails every attempt is a failed
delivery; after ``DEACTIVATE_AFTER`` failed deliveries in a row a webhook is deactivated (``is_active``
false, nothing sent to it) until a ``PUT /v1/webhooks/{id}`` re-enables it (insightiq-webhook-events.md,
"Webhook management API")."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections import Counter

import httpx

from devtools.sandbox.readings import Readings
from devtools.sandbox.records import iso

log = logging.getLogger(__name__)
RETRY_DELAYS = (0.2, 0.5, 1.0)
DEACTIVATE_AFTER = 3  # failed deliveries in a row
SIGNATURE_HEADER = "Webhook-Signatures"
OTHER_SIGNATURE_HEADER = "Phyllo-Signature"

# The event names InsightIQ's webhook enum holds (../shared/api-docs/insightiq-webhook-events.md,
# tables A and B): creating or updating a webhook with any other name is refused with 400, as the
# vendor's enum validator does.
KNOWN_EVENTS = frozenset(
    {
        *(
            f"{family}.{action}"
            for family in (
                "PROFILES",
                "PROFILES_AUDIENCE",
                "CONTENTS",
                "CONTENT-GROUPS",
                "CONTENTS_COMMENTS",
                "TRANSACTIONS",
                "PAYOUTS",
                "BALANCES",
                "ACTIVITY-ARTISTS",
                "ACTIVITY-CONTENTS",
            )
            for action in ("ADDED", "UPDATED")
        ),
        "ACCOUNTS.CONNECTED",
        "ACCOUNTS.DISCONNECTED",
        "SESSION.EXPIRED",
        "CONTENTS.PUBLISH_READY",
        "CONTENTS.PUBLISH_SUCCESS",
        "CONTENTS.PUBLISH_FAILURE",
        *(
            f"{job}.{outcome}"
            for job in (
                "PROFILE_ANALYTICS",
                "AUDIENCE_OVERLAP",
                "CONTENTS_FETCH",
                "CREATOR_SEARCH_EXPORT",
                "EMAIL_LOOKUP",
                "CONTENT_COMMENTS_FETCH",
                "COMMENTS_ANALYTICS",
                "PROFILE_COMMENTS_ANALYTICS",
            )
            for outcome in ("SUCCESS", "FAILURE")
        ),
    }
)


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookHub:
    def __init__(self, secret: str, readings: Readings | None = None) -> None:
        self.secret = secret
        self.readings = readings or Readings()
        # webhook id -> failed deliveries since its last success
        self.failed_in_a_row: Counter[str] = Counter()
        self.deactivated = 0
        self.hooks: dict[str, dict] = {}
        self.created = 0
        self._tasks: set[asyncio.Task] = set()
        self._sem: asyncio.Semaphore | None = None
        self.deliveries: Counter[str] = Counter()
        self.recent: list[dict] = []

    def reset(self) -> None:
        self.hooks.clear()
        self.failed_in_a_row.clear()
        self.deactivated = 0
        self.deliveries.clear()
        self.recent.clear()

    def targets(self, event: str) -> list[dict]:
        return [h for h in self.hooks.values() if h["is_active"] and event in h["events"]]

    def dispatch(self, payload: dict) -> tuple[str, int]:
        """Schedule delivery of ``payload`` (an ``id`` is added if absent) to every matching hook."""
        payload = {"id": payload.get("id") or str(uuid.uuid4()), **payload}
        targets = self.targets(str(payload.get("event")))
        body = json.dumps(payload, separators=(",", ":")).encode()
        for hook in targets:
            task = asyncio.get_running_loop().create_task(self._deliver(hook, body, payload["id"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return payload["id"], len(targets)

    def signature_header(self) -> str:
        return OTHER_SIGNATURE_HEADER if self.readings.other_signature_header else SIGNATURE_HEADER

    def reactivated(self, hook: dict) -> None:
        """``PUT`` set ``is_active``: the failure count starts again."""
        self.failed_in_a_row.pop(hook["id"], None)

    async def _deliver(self, hook: dict, body: bytes, event_id: str) -> None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(16)
        url = hook["url"]
        headers = {"Content-Type": "application/json", self.signature_header(): sign(body, self.secret)}
        outcome = "failed"
        async with self._sem, httpx.AsyncClient(timeout=5.0) as client:
            for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
                await asyncio.sleep(delay)
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code < 300:
                        outcome = "delivered"
                        break
                except httpx.HTTPError as exc:
                    log.debug("webhook %s attempt %d failed: %s", url, attempt, exc)
        self.deliveries[outcome] += 1
        self._count_failure(hook, outcome == "failed")
        self.recent.append({"id": event_id, "url": url, "outcome": outcome, "at": time.time()})
        del self.recent[:-1000]

    def _count_failure(self, hook: dict, failed: bool) -> None:
        if not failed:
            self.failed_in_a_row.pop(hook["id"], None)
            return
        self.failed_in_a_row[hook["id"]] += 1
        if self.failed_in_a_row[hook["id"]] >= DEACTIVATE_AFTER and hook["is_active"]:
            hook["is_active"] = False
            hook["updated_at"] = iso(time.time())
            self.deactivated += 1
            log.warning("webhook %s deactivated after %d failed deliveries", hook["id"], DEACTIVATE_AFTER)
