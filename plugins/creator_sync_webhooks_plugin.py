"""Airflow plugin: mounts the creator-sync webhook receiver on the API server at ``/creator-sync``.

``POST /creator-sync/webhooks/insightiq`` (InsightIQ events) and
``POST /creator-sync/webhooks/insider-errors`` (Insider One unification errors). See docs/webhooks.md.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from creator_sync.webhooks.app import create_app

URL_PREFIX = "/creator-sync"


class CreatorSyncWebhooksPlugin(AirflowPlugin):
    name = "creator_sync_webhooks"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "creator-sync webhooks"},
    ]
