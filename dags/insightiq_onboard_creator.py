"""Onboard one creator at InsightIQ: find (by external_id) or create the user, then issue an SDK token.

The token is masked in the logs and never stored: the XCom holds the user id, the expiry and a token
fingerprint only.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from creator_sync.audit.defaults import DEFAULT_ARGS, INSIGHTIQ_POOL, START_DATE
from creator_sync.audit.manual import PRODUCTS


@dag(
    dag_id="insightiq_onboard_creator",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["creator-sync", "insightiq", "manual"],
    doc_md=__doc__,
    params={
        "name": Param("", type="string", minLength=1, maxLength=200, description="Creator name"),
        "external_id": Param(
            "", type="string", minLength=1, maxLength=200, description="Our id of the creator"
        ),
        "products": Param(
            ["IDENTITY", "ENGAGEMENT"],
            type="array",
            items={"type": "string", "enum": list(PRODUCTS)},
            minItems=1,
            uniqueItems=True,
            description="InsightIQ products the SDK token grants",
        ),
    },
)
def insightiq_onboard_creator():
    @task(pool=INSIGHTIQ_POOL)
    def onboard_creator(params=None) -> dict:
        from creator_sync.audit.errors import fail_fast
        from creator_sync.audit.manual import onboard_creator
        from creator_sync.hooks.insightiq import InsightIQHook

        with fail_fast():
            return onboard_creator(InsightIQHook(), params["name"], params["external_id"], params["products"])

    onboard_creator()


insightiq_onboard_creator()
