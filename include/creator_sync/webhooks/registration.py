"""Register our receiver at InsightIQ idempotently (the ``insightiq_webhooks_setup`` DAG).

Our webhook is the one named ``creator-sync`` (or, for webhooks created without a name, the one whose URL
is ours). Missing -> create; URL, events or active flag different -> update; equal -> nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from creator_sync.errors import CreatorSyncConfigError
from creator_sync.routes.callback import insightiq_webhook_url
from creator_sync.webhooks.events import SUBSCRIBED_EVENTS

WEBHOOK_NAME = "creator-sync"


class WebhookSetupError(CreatorSyncConfigError):
    pass


def find_ours(webhooks: Sequence[dict[str, Any]], url: str, name: str = WEBHOOK_NAME) -> list[dict[str, Any]]:
    named = [w for w in webhooks if w.get("name") == name]
    return named or [w for w in webhooks if w.get("url") == url]


def ensure_webhook(
    hook,
    url: str | None = None,
    events: Sequence[str] = SUBSCRIBED_EVENTS,
    name: str = WEBHOOK_NAME,
) -> dict[str, Any]:
    """Make InsightIQ deliver ``events`` to ``url``; returns ``{"action": created|updated|unchanged, ...}``.

    ``hook`` is an ``InsightIQHook`` (iter_records("webhooks") / create_webhook / update_webhook).
    """
    url = url or insightiq_webhook_url()
    if not url:
        raise WebhookSetupError(
            "CREATOR_SYNC_PUBLIC_BASE_URL is not set: InsightIQ needs a public https URL of the Airflow API "
            "server to deliver webhooks to (e.g. https://airflow.example.com)"
        )
    wanted = sorted(set(events))
    ours = find_ours(list(hook.iter_records("webhooks")), url, name)
    if not ours:
        created = hook.create_webhook(url, wanted, name=name)
        return {"action": "created", "id": created.get("id"), "url": url, "events": wanted}
    current, duplicates = ours[0], [w.get("id") for w in ours[1:]]
    result = {"id": current.get("id"), "url": url, "events": wanted, "duplicates": duplicates}
    same = (
        current.get("url") == url
        and sorted(set(current.get("events") or [])) == wanted
        and current.get("is_active", True)
    )
    if same:
        return {"action": "unchanged", **result}
    hook.update_webhook(current["id"], url, wanted, name=name, is_active=True)
    changed = {
        "url": [current.get("url"), url] if current.get("url") != url else None,
        "events_added": sorted(set(wanted) - set(current.get("events") or [])),
        "events_removed": sorted(set(current.get("events") or []) - set(wanted)),
        "reactivated": not current.get("is_active", True),
    }
    return {"action": "updated", **result, "changed": changed}
