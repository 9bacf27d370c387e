"""Register (or update) our InsightIQ webhook: {CREATOR_SYNC_PUBLIC_BASE_URL}/creator-sync/webhooks/insightiq.

Idempotent: creates it when missing, updates URL/events when they differ, otherwise does nothing. Hourly,
so a changed public URL or event list is picked up without a manual step, and a webhook InsightIQ
deactivated (after 3 failed deliveries) is re-enabled within the hour, with an alert through the project's
notifier; trigger it by hand after a deploy.
"""

from __future__ import annotations

from airflow.sdk import dag

from creator_sync.dag_defaults import DEFAULT_ARGS, START_DATE
from creator_sync.operators.webhooks import InsightIQWebhookSetupOperator


@dag(
    dag_id="insightiq_webhooks_setup",
    description="Keep our InsightIQ webhook registered at the public receiver URL",
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["creator-sync", "insightiq", "webhooks"],
    doc_md=__doc__,
)
def insightiq_webhooks_setup():
    InsightIQWebhookSetupOperator(task_id="register_insightiq_webhook")


insightiq_webhooks_setup()
