"""InsightIQ webhook registration operator: make InsightIQ deliver our events to our receiver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from creator_sync.limits import INSIGHTIQ_POOL
from creator_sync.operators._common import as_list, vendor_defaults
from creator_sync.webhooks.events import SUBSCRIBED_EVENTS
from creator_sync.webhooks.registration import ensure_webhook


class InsightIQWebhookSetupOperator(BaseOperator):
    """Create, update or leave our InsightIQ webhook; XCom: ``{"action", "id", "url", "events", ...}``.

    :param url: templated receiver URL; empty = the public URL of our receiver
        (``$CREATOR_SYNC_PUBLIC_BASE_URL/creator-sync/webhooks/insightiq``).
    :param events: templated list of InsightIQ event names (default: the events the receiver handles).
    :param conn_id: an ``insightiq`` connection (default ``insightiq_default``).

    Idempotent (``creator_sync.webhooks.registration.ensure_webhook``); a create whose answer was lost is
    settled by looking the webhook up by URL (``InsightIQHook.create_webhook``).
    """

    template_fields: Sequence[str] = ("url", "events")
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        url: str | None = None,
        events: Sequence[str] | str = SUBSCRIBED_EVENTS,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**vendor_defaults(kwargs, INSIGHTIQ_POOL))
        self.url = url
        self.events = events
        self.conn_id = conn_id

    def execute(self, context) -> dict[str, Any]:
        from creator_sync.hooks.insightiq import InsightIQHook

        hook = InsightIQHook(self.conn_id)
        try:
            result = ensure_webhook(hook, self.url or None, as_list(self.events, "events"))
        finally:
            hook.close()
        self.log.info("InsightIQ webhook %s: %s (%s)", result["id"], result["action"], result["url"])
        return result
