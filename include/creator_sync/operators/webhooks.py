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

    InsightIQ deactivates a webhook after 3 failed deliveries (``is_active`` false;
    insightiq-webhook-events.md, "Webhook management API") and sends nothing until it is re-enabled. A
    deactivated webhook is re-enabled here and an alert goes out through the project's notifier
    (``creator_sync.alerts``, connection ``$CREATOR_SYNC_ALERT_CONN_ID``): the events of the deactivated
    time were not delivered, and the incremental sweeps (creator_sync.sync.plan) bring their changes within
    their periods.
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
        if (result.get("changed") or {}).get("reactivated"):
            self._alert_reactivated(context, result)
        return result

    def _alert_reactivated(self, context, result: dict[str, Any]) -> None:
        from creator_sync.alerts import CreatorSyncAlert

        self.log.warning("InsightIQ webhook %s was deactivated by InsightIQ; re-enabled", result["id"])
        notice = {
            "subject": f"InsightIQ webhook {result['id']} was deactivated and is re-enabled",
            "rows": [
                ("Webhook", str(result["id"])),
                ("URL", str(result["url"])),
                (
                    "What happened",
                    "InsightIQ deactivates a webhook after 3 failed deliveries. Events of the deactivated "
                    "time were not delivered; the incremental sweeps re-read the changes (directory within "
                    "a day, income and per-account contents within a week). Check why the receiver failed.",
                ),
            ],
        }
        CreatorSyncAlert(kind="notice").notify({**dict(context or {}), "notice": notice})
