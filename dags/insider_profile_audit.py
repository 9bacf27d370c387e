"""Read back a sample of the users a creator_sync run just sent, through Insider's User Profile API, and
report attribute/event mismatches (task log + XCom summary). Runs on the creator_sync users Asset.

Manual use: set `identifier` (and `identifier_type`) to print that one profile in the task log.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from creator_sync.assets import INSIDER_USERS
from creator_sync.dag_defaults import DEFAULT_ARGS, START_DATE
from creator_sync.operators.profile_audit import DEFAULT_ATTRIBUTES, InsiderProfileAuditOperator


@dag(
    dag_id="insider_profile_audit",
    description="Compare a sample of a creator_sync run's users with what Insider One holds",
    schedule=[INSIDER_USERS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["creator-sync", "insider", "audit"],
    doc_md=__doc__,
    params={
        "identifier": Param(None, type=["null", "string"], description="Manual: one user to look up"),
        "identifier_type": Param("uuid", enum=["uuid", "email", "phone_number"]),
        "attributes": Param(
            list(DEFAULT_ATTRIBUTES),
            type="array",
            items={"type": "string"},
            description="Manual lookup: attributes to read (custom ones with the c_ prefix)",
        ),
        "sample_size": Param(20, type="integer", minimum=1, maximum=500),
        "max_quota_units": Param(
            500, type="number", minimum=1, maximum=1000, description="Profile API quota units to spend"
        ),
    },
)
def insider_profile_audit():
    InsiderProfileAuditOperator(
        task_id="audit_profiles",
        identifier="{{ params.identifier or '' }}",
        identifier_type="{{ params.identifier_type }}",
        attributes="{{ params.attributes }}",
        sample_size="{{ params.sample_size }}",
        max_quota_units="{{ params.max_quota_units }}",
    )


insider_profile_audit()
