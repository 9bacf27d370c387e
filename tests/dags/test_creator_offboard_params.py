"""creator_offboard: the trigger form's Params (what the form enforces) and the task chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.connections import validated_params as assign

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "creator_offboard.py"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags["creator_offboard"]


def test_defaults_and_ids(dag):
    assert assign(dag) == {"user_ids": [], "external_ids": [], "dry_run": False}
    got = assign(dag, user_ids=["u1", "u2"], external_ids=["ext-1"], dry_run=True)
    assert (got["user_ids"], got["external_ids"], got["dry_run"]) == (["u1", "u2"], ["ext-1"], True)


@pytest.mark.parametrize("bad", [{"user_ids": "u1"}, {"user_ids": [1]}, {"dry_run": "yes"}])
def test_bad_input_is_refused(dag, bad):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        assign(dag, **bad)


def test_the_story_and_its_pools(dag):
    assert [t.task_id for t in dag.topological_sort()] == ["collect", "erase", "purge", "report"]
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert pools["collect"] == "insightiq_api" and pools["erase"] == "insider_data_governance"
    assert {dag.get_task(t).trigger_rule for t in ("purge", "report")} == {"all_done"}
    assert dag.description and dag.max_active_runs == 1
