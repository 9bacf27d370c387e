"""How the receiver starts a targeted ``creator_sync`` run - the only part that needs a live Airflow.

The receiver runs inside the Airflow API server, which owns a metadata-DB session, so it calls Airflow's
internal ``trigger_dag`` directly (the same code path as ``POST /api/v2/dags/{id}/dagRuns``): no token, no
HTTP round trip back into the same process, and the run carries ``conf={"account_ids": [...]}`` exactly as
the lead's ``creator_sync`` Params expect. An Asset event would not carry the account list as run conf
(asset-triggered runs have no conf) and would make ``creator_sync`` depend on a second schedule.

Tests substitute any object with the same two methods (see ``SyncTrigger``).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)

DAG_ID = "creator_sync"
TRIGGERING_USER = "insightiq-webhook"


class SyncTrigger(Protocol):
    def trigger(self, run_id: str, account_ids: list[str]) -> str:
        """Create a ``creator_sync`` run for ``account_ids``; returns its run id (idempotent on run_id)."""

    def extend_queued(self, run_id: str, account_ids: list[str]) -> bool:
        """Add ``account_ids`` to run ``run_id`` if it has not started yet; False when it has."""


class AirflowSyncTrigger:
    """Triggers through the metadata DB of the API server this app is mounted in."""

    def __init__(self, dag_id: str = DAG_ID):
        self.dag_id = dag_id

    def trigger(self, run_id: str, account_ids: list[str]) -> str:
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.exceptions import DagRunAlreadyExists
        from airflow.utils.types import DagRunTriggeredByType

        try:
            run = trigger_dag(
                self.dag_id,
                run_id=run_id,
                conf={"account_ids": list(account_ids)},
                triggered_by=DagRunTriggeredByType.REST_API,
                triggering_user_name=TRIGGERING_USER,
                note=f"InsightIQ webhooks: targeted sync of {len(account_ids)} account(s)",
            )
        except DagRunAlreadyExists:  # a retry after a crash between trigger and bookkeeping
            return run_id
        return run.run_id if run is not None else run_id

    def extend_queued(self, run_id: str, account_ids: list[str]) -> bool:
        """Merge into the run's conf while the run is still QUEUED (no task has read the conf yet).

        The row is locked (``FOR UPDATE``; SQLite serialises writers anyway) so the scheduler cannot move
        it to RUNNING between the check and the update: either the merge lands before the run starts, or
        the run has started and the caller triggers a new one.
        """
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState
        from sqlalchemy import select

        with create_session() as session:
            run = session.scalar(
                select(DagRun).where(DagRun.dag_id == self.dag_id, DagRun.run_id == run_id).with_for_update()
            )
            if run is None or run.state != DagRunState.QUEUED:
                return False
            conf = dict(run.conf or {})
            current = conf.get("account_ids") or []
            if not current:  # an untargeted (all accounts) run already covers everything
                return True
            conf["account_ids"] = sorted(set(current) | set(account_ids))
            run.conf = conf
        return True
