"""Onboard one creator at InsightIQ: find (by external_id) or create the user, then issue an SDK token.

The token is masked in the logs and never stored: the XCom holds the user id, the expiry and a token
fingerprint only. A user create whose answer was lost is settled by looking the user up, never by
creating a second one.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from creator_sync.dag_defaults import DEFAULT_ARGS, START_DATE
from creator_sync.operators.onboarding import InsightIQOnboardCreatorOperator
from creator_sync.vendor_rules import INSIGHTIQ_PRODUCTS


@dag(
    dag_id="insightiq_onboard_creator",
    description="Manual: find or create one creator's InsightIQ user and issue an SDK token",
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
            items={"type": "string", "enum": list(INSIGHTIQ_PRODUCTS)},
            minItems=1,
            uniqueItems=True,
            description="InsightIQ products the SDK token grants",
        ),
    },
)
def insightiq_onboard_creator():
    InsightIQOnboardCreatorOperator(
        task_id="onboard_creator",
        name="{{ params.name }}",
        external_id="{{ params.external_id }}",
        products="{{ params.products }}",
    )


insightiq_onboard_creator()
