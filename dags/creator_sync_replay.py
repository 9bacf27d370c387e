"""
### creator_sync_replay — re-send dead letters once they are fixed upstream

Manual trigger. Picks pending dead letters by reason (Param `reasons`), rebuilds each user from the stored
payload, re-validates it with today's rules (still-invalid rows stay pending), and sends the rest through
the same exactly-once sender as `creator_sync` (the ledger drops events Insider already acknowledged).
Replayed data is historical, so `skip_hook` defaults to true.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from creator_sync.dag_defaults import default_args
from creator_sync.retry import VENDOR_RETRY_POLICY

REASONS = [
    "vendor_rejected",
    "unification_error",
    "malformed_email",
    "non_e164_phone",
    "no_usable_identifier",
    "missing_identifier",
    "invalid_uuid",
    "invalid_event_timestamp",
    "purchase_missing_params",
    "user_too_large",
]


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, retry_policy=VENDOR_RETRY_POLICY),
    tags=["creator-sync", "insider", "dead-letters"],
    doc_md=__doc__,
    params={
        "reasons": Param(
            ["vendor_rejected", "unification_error"],
            type="array",
            items={"type": "string", "enum": REASONS},
            minItems=1,
            description="Replay pending dead letters with these reasons.",
        ),
        "limit": Param(None, type=["null", "integer"], minimum=1, description="At most this many letters."),
        "skip_hook": Param(True, type="boolean", description="Keep replayed data out of Architect journeys."),
    },
)
def creator_sync_replay():
    @task(pool="insider_upsert")
    def replay_dead_letters(params: dict, run_id: str) -> dict:
        from dataclasses import asdict

        from creator_sync.hooks.insider import InsiderHook
        from creator_sync.pipeline.replay import replay_dead_letters
        from creator_sync.pipeline.state import StateStore

        report = replay_dead_letters(
            StateStore(),
            InsiderHook(),
            run_id=run_id,
            reasons=list(params["reasons"]),
            limit=params.get("limit"),
            skip_hook=bool(params["skip_hook"]),
        )
        return asdict(report)

    replay_dead_letters()


creator_sync_replay()
