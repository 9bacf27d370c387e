"""What the webhook receiver does for offboarding (docs/offboarding.md).

* ``ACCOUNTS.DISCONNECTED``: the creator may have left. Their request is queued (by user id, or by account id
  when the payload has no user) and a ``creator_offboard`` run is triggered; that run reads the creator's
  accounts at InsightIQ and offboards only when the rule holds. Nothing is erased on the webhook's word.
* ``ACCOUNTS.CONNECTED``: the creator is back. A pending request is dropped and an offboarded creator is
  re-enabled (unless the event is older than the disconnect that offboarded them); the receiver's usual
  targeted ``creator_sync`` of the account then sends them again.
* Anything else, ``SESSION.EXPIRED`` included, is not about leaving.

The side effects run before the receiver records the delivery and are idempotent, so a crash in between is
repaired by InsightIQ's redelivery; a recorded (replayed) delivery does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger(__name__)

DISCONNECTED = "ACCOUNTS.DISCONNECTED"
CONNECTED = "ACCOUNTS.CONNECTED"
DAG_ID = "creator_offboard"
RUN_ID_PREFIX = "insightiq_offboard__"
TRIGGERING_USER = "insightiq-webhook"
REASON = "accounts_disconnected"


class OffboardTrigger(Protocol):
    def trigger(self, run_id: str) -> str:
        """Make sure a ``creator_offboard`` run will read the queue; returns its run id."""


class AirflowOffboardTrigger:
    """Through the API server's metadata DB, like ``AirflowSyncTrigger``. A run that has not started yet
    reads the queue when it starts, so a queued run is reused instead of stacking another one."""

    def __init__(self, dag_id: str = DAG_ID):
        self.dag_id = dag_id

    def trigger(self, run_id: str) -> str:
        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.exceptions import DagRunAlreadyExists
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunTriggeredByType
        from sqlalchemy import select

        with create_session() as session:
            queued = session.scalar(
                select(DagRun.run_id).where(DagRun.dag_id == self.dag_id, DagRun.state == DagRunState.QUEUED)
            )
        if queued:
            return queued
        try:
            run = trigger_dag(
                self.dag_id,
                run_id=run_id,
                conf={},
                triggered_by=DagRunTriggeredByType.REST_API,
                triggering_user_name=TRIGGERING_USER,
                note="InsightIQ webhook: ACCOUNTS.DISCONNECTED, confirm and offboard",
            )
        except DagRunAlreadyExists:
            return run_id
        return run.run_id if run is not None else run_id


def event_time(value: object) -> datetime | None:
    """``data.last_updated_time`` (naive ISO, sometimes with Z or a space) as aware UTC; None if unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


class OffboardEvents:
    def __init__(self, state=None, trigger: OffboardTrigger | None = None):
        self._state = state
        self._trigger = trigger

    @property
    def state(self):
        if self._state is None:
            from creator_sync.store import OffboardingState, StateStore

            self._state = OffboardingState(StateStore())
        return self._state

    @property
    def trigger(self) -> OffboardTrigger:
        if self._trigger is None:
            self._trigger = AirflowOffboardTrigger()
        return self._trigger

    def handle(self, body: bytes, event) -> dict:
        """Side effects of one (new, signature-checked, well-formed) delivery; {} for other events."""
        if event.event not in (DISCONNECTED, CONNECTED):
            return {}
        data = json.loads(body).get("data") or {}
        user_id, account_id = _text(data.get("user_id")), _text(data.get("account_id"))
        moment = event_time(data.get("last_updated_time"))
        if event.event == CONNECTED:
            if not user_id:
                return {"offboarding": "no user_id: nothing to re-enable"}
            cancelled = self.state.cancel(user_id)
            reenabled = self.state.reenable(user_id, moment)
            log.info("ACCOUNTS.CONNECTED: re-enabled=%s, pending requests dropped=%d", reenabled, cancelled)
            return {"offboarding": "reenabled" if reenabled else "nothing to re-enable"}
        if not user_id and not account_id:
            return {"offboarding": "no user_id or account_id: nothing to check"}
        self.state.queue(
            user_id=user_id, account_id=account_id, reason=REASON, source="webhook", event_time=moment
        )
        run_id = RUN_ID_PREFIX + hashlib.sha256(event.event_id.encode()).hexdigest()[:24]
        try:
            run_id = self.trigger.trigger(run_id)
        except Exception:  # the request stays queued; creator_offboard's daily run picks it up
            log.exception("Triggering creator_offboard failed; the request stays queued")
            return {"offboarding": "queued", "run_id": None}
        return {"offboarding": "queued", "run_id": run_id}
