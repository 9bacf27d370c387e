"""
### creator_sync_replay — re-send dead letters once they are fixed upstream

Manual trigger.

1. **prepare**: picks pending dead letters by reason (Param `reasons`), rebuilds each user from the stored
   payload and re-validates it with today's rules (still-invalid rows stay pending); writes the users to
   send under the run's data directory.
2. **upsert** (`InsiderUpsertOperator`): the same exactly-once sender as `creator_sync` (claims, ledger,
   lost-answer check, dead letters); users Insider rejects again are dead-lettered under this run.
3. **finish**: marks replayed the letters whose user Insider acknowledged or rejected again (a new dead
   letter); letters the sender skipped (claimed by a live run, offboarded) stay pending. The run's report
   reconciles selected = acknowledged + rejected again + skipped + still invalid + superseded, and the task
   fails when it does not.

Replayed data is historical, so `skip_hook` defaults to true.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from creator_sync.dag_defaults import default_args
from creator_sync.operators import InsiderUpsertOperator
from creator_sync.reasons import REPLAYABLE


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2),
    tags=["creator-sync", "insider", "dead-letters"],
    doc_md=__doc__,
    params={
        "reasons": Param(
            ["vendor_rejected", "unification_error"],
            type="array",
            items={"type": "string", "enum": list(REPLAYABLE)},
            minItems=1,
            description="Replay pending dead letters with these reasons.",
        ),
        "limit": Param(None, type=["null", "integer"], minimum=1, description="At most this many letters."),
        "skip_hook": Param(True, type="boolean", description="Keep replayed data out of Architect journeys."),
    },
)
def creator_sync_replay():
    @task(multiple_outputs=True)
    def prepare(params: dict, run_id: str) -> dict:
        from creator_sync.pipeline.replay import prepare_replay
        from creator_sync.store import StateStore
        from creator_sync.sync.run_context import run_dir

        plan = prepare_replay(
            StateStore(),
            run_dir(run_id) / "replay",
            reasons=list(params["reasons"]),
            limit=params.get("limit"),
        )
        return {**plan.as_dict(), "skip_hook": bool(params["skip_hook"])}

    plan = prepare()
    upsert = InsiderUpsertOperator(
        task_id="upsert", users_path=plan["users_path"], skip_hook=plan["skip_hook"]
    )

    @task
    def finish(plan: dict, sent: dict, dag_run=None) -> dict:
        from creator_sync.pipeline.replay import finish_replay, replay_gap
        from creator_sync.store import StateStore

        state = StateStore()
        done = finish_replay(state, plan, dag_run.run_id)
        gap = replay_gap(plan, done)
        figures = {k: v for k, v in plan.items() if k not in ("letters", "settled_without_send")}
        figures.update(
            marked_replayed=done.marked_replayed,
            settled=done.settled,
            skipped=done.skipped,
            gap=gap,
            send=sent["send"],
        )
        text = (
            f"creator_sync_replay: {plan['selected']} letters selected ({plan['users']} users); "
            f"still invalid {plan['still_invalid'] or 'none'}; superseded {plan['superseded']}; "
            f"sent {sent['send']['users_sent']} users, {sent['send']['events_sent']} events in "
            f"{sent['send']['requests']} requests; settled {done.settled or 'none'}; "
            f"left pending {done.skipped or 'none'}; marked replayed {done.marked_replayed}; "
            + ("reconciles." if gap == 0 else f"DOES NOT RECONCILE: {gap} letter(s) unaccounted for.")
        )
        state.save_run_report("creator_sync_replay", dag_run.run_id, figures, text, gap == 0)
        if gap:
            raise RuntimeError(text)
        return {**figures, "text": text}

    finish(plan, upsert.output)


creator_sync_replay()
