"""Register (or update) our InsightIQ webhook: {CREATOR_SYNC_PUBLIC_BASE_URL}/creator-sync/webhooks/insightiq.

Idempotent: creates it when missing, updates URL/events when they differ, otherwise does nothing. Daily,
so a changed public URL or event list is picked up without a manual step; trigger it by hand after a deploy.
"""

from __future__ import annotations

from airflow.sdk import dag, task

from creator_sync.audit.defaults import DEFAULT_ARGS, INSIGHTIQ_POOL, START_DATE


@dag(
    dag_id="insightiq_webhooks_setup",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["creator-sync", "insightiq", "webhooks"],
    doc_md=__doc__,
)
def insightiq_webhooks_setup():
    @task(pool=INSIGHTIQ_POOL)
    def register_insightiq_webhook() -> dict:
        from creator_sync.audit.errors import fail_fast
        from creator_sync.hooks.insightiq import InsightIQHook
        from creator_sync.webhooks.registration import ensure_webhook

        with fail_fast():
            result = ensure_webhook(InsightIQHook())
        print(f"InsightIQ webhook {result['id']}: {result['action']} ({result['url']})")
        return result

    register_insightiq_webhook()


insightiq_webhooks_setup()
