"""Create an Insider One Single Web Push campaign (Draft) from the trigger form.

The form validates the Params (title <= 100 characters, language like en_US or all_ALL). A title that
already exists is reported and fails the run without retries.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from creator_sync.audit.defaults import DEFAULT_ARGS, INSIDER_WEB_PUSH_POOL, START_DATE
from creator_sync.audit.manual import LANGUAGE_PATTERN, MAX_TITLE


@dag(
    dag_id="insider_web_push",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["creator-sync", "insider", "web-push", "manual"],
    doc_md=__doc__,
    params={
        "title": Param(
            "", type="string", minLength=1, maxLength=MAX_TITLE, description="Campaign title, unique"
        ),
        "language": Param(
            "en_US",
            type="string",
            pattern=LANGUAGE_PATTERN,
            description="e.g. en_US; all_ALL = every language",
        ),
        "is_all": Param(
            False, type="boolean", description="Send to all subscribers (once, visible in InOne)"
        ),
    },
)
def insider_web_push():
    @task(pool=INSIDER_WEB_PUSH_POOL)
    def create_web_push_campaign(params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from creator_sync.audit.errors import fail_fast
        from creator_sync.audit.manual import WebPushTitleExists, create_web_push
        from creator_sync.hooks.web_push import InsiderWebPushHook

        try:
            with fail_fast():
                return create_web_push(
                    InsiderWebPushHook(), params["title"], params["language"], params["is_all"]
                )
        except WebPushTitleExists as exc:
            raise AirflowFailException(str(exc)) from exc

    create_web_push_campaign()


insider_web_push()
