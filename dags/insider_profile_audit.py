"""Read back a sample of the users a creator_sync run just sent, through Insider's User Profile API, and
report attribute/event mismatches (task log + XCom summary). Runs on the creator_sync users Asset.

Manual use: set `identifier` (and `identifier_type`) to print that one profile in the task log.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, task

from creator_sync.audit.defaults import (
    CREATOR_SYNC_USERS_ASSET_NAME,
    CREATOR_SYNC_USERS_ASSET_URI,
    DEFAULT_ARGS,
    INSIDER_PROFILE_POOL,
    START_DATE,
)

USERS_ASSET = Asset(name=CREATOR_SYNC_USERS_ASSET_NAME, uri=CREATOR_SYNC_USERS_ASSET_URI)


@dag(
    dag_id="insider_profile_audit",
    schedule=[USERS_ASSET],
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
            ["uuid", "email", "phone_number", "name", "surname", "language", "country", "city"],
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
    @task(pool=INSIDER_PROFILE_POOL)
    def audit_profiles(params=None, triggering_asset_events=None, run_id=None) -> dict:
        from creator_sync.audit.errors import fail_fast
        from creator_sync.audit.profile_audit import audit_run
        from creator_sync.hooks.insider import InsiderHook

        with fail_fast():
            return audit_run(InsiderHook(), dict(params), triggering_asset_events, run_id)

    audit_profiles()


insider_profile_audit()
