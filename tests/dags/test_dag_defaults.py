"""creator_sync.dag_defaults: with CREATOR_SYNC_ALERT_CONN_ID set every task of every DAG alerts on failure
and creator_sync carries a Deadline Alert of one interval that Airflow can serialize;
unset, neither exists."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from creator_sync.alerts import CreatorSyncAlert
from creator_sync.dag_defaults import default_args, interval_length, task_timeout
from creator_sync.errors import CreatorSyncConfigError

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


def load_dags():
    """Parse dags/ as the dag-processor does, in a fresh import of the modules that hold DAG defaults."""
    import sys

    from airflow.dag_processing.dagbag import DagBag

    sys.modules.pop("creator_sync.dag_defaults", None)  # DEFAULT_ARGS is read at import

    bag = DagBag(dag_folder=str(DAGS_DIR), safe_mode=False)
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags


def test_with_an_alert_connection_every_task_alerts_and_creator_sync_has_a_deadline(monkeypatch):
    from airflow.serialization.serialized_objects import DagSerialization

    monkeypatch.setenv("CREATOR_SYNC_ALERT_CONN_ID", "ops_alerts")
    dags = load_dags()
    for dag_id, dag in dags.items():
        for task in dag.tasks:
            callbacks = task.on_failure_callback or []
            assert any(isinstance(c, CreatorSyncAlert) and c.conn_id == "ops_alerts" for c in callbacks), (
                f"{dag_id}.{task.task_id} sends no failure alert"
            )
    [deadline] = dags["creator_sync"].deadline
    assert deadline.interval == timedelta(hours=1)
    assert deadline.callback.path == "creator_sync.alerts.CreatorSyncAlert"
    serialized = DagSerialization.to_dict(dags["creator_sync"])["dag"]["deadline"]
    assert serialized[0]["reference"] == {"reference_type": "DagRunQueuedAtDeadline"}


def test_without_the_setting_there_is_no_alert_and_no_deadline(monkeypatch):
    monkeypatch.delenv("CREATOR_SYNC_ALERT_CONN_ID", raising=False)
    dags = load_dags()
    assert not dags["creator_sync"].deadline
    assert not any(task.on_failure_callback for dag in dags.values() for task in dag.tasks)


def test_interval_length_and_settings(monkeypatch):
    assert interval_length("0 * * * *") == timedelta(hours=1)
    assert interval_length("*/15 * * * *") == timedelta(minutes=15)
    assert interval_length("0 3 * * *") == timedelta(days=1)
    monkeypatch.setenv("CREATOR_SYNC_TASK_TIMEOUT_MINUTES", "45")
    assert task_timeout() == timedelta(minutes=45) == default_args()["execution_timeout"]
    assert default_args(retries=1)["retries"] == 1
    monkeypatch.setenv("CREATOR_SYNC_TASK_TIMEOUT_MINUTES", "soon")
    with pytest.raises(CreatorSyncConfigError, match="CREATOR_SYNC_TASK_TIMEOUT_MINUTES='soon' is invalid"):
        task_timeout()
