"""Create an Insider One Single Web Push campaign (Draft) from the trigger form.

The form validates the Params (title <= 100 characters, language like en_US or all_ALL). A title that
already exists fails the run without retries; when an earlier try's answer was lost, the error says the
campaign was probably created and where to find it.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from creator_sync.dag_defaults import DEFAULT_ARGS, START_DATE
from creator_sync.operators.web_push import InsiderWebPushOperator
from creator_sync.vendor_rules import WEB_PUSH_LANGUAGE_PATTERN, WEB_PUSH_MAX_TITLE


@dag(
    dag_id="insider_web_push",
    description="Manual: create one Insider One Single Web Push campaign (Draft)",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["creator-sync", "insider", "web-push", "manual"],
    doc_md=__doc__,
    params={
        "title": Param(
            "", type="string", minLength=1, maxLength=WEB_PUSH_MAX_TITLE, description="Campaign title, unique"
        ),
        "language": Param(
            "en_US",
            type="string",
            pattern=WEB_PUSH_LANGUAGE_PATTERN,
            description="e.g. en_US; all_ALL = every language",
        ),
        "is_all": Param(
            False, type="boolean", description="Send to all subscribers (once, visible in InOne)"
        ),
    },
)
def insider_web_push():
    InsiderWebPushOperator(
        task_id="create_web_push_campaign",
        title="{{ params.title }}",
        language="{{ params.language }}",
        is_all="{{ params.is_all }}",
    )


insider_web_push()
