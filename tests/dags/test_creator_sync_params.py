"""creator_sync Params: lookback_hours is validated by its JSON schema (what the trigger form enforces)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.connections import validated_params as assign

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "creator_sync_dag.py"


@pytest.fixture(scope="module")
def creator_sync():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags["creator_sync"]


def test_lookback_defaults_to_the_environment_and_is_documented(creator_sync):
    assert creator_sync.params.validate()["lookback_hours"] is None  # None = CREATOR_SYNC_LOOKBACK_HOURS
    description = creator_sync.params.get_param("lookback_hours").description
    assert "CREATOR_SYNC_LOOKBACK_HOURS" in description and "never sent twice" in description
    assert "lookback_hours" in creator_sync.doc_md


@pytest.mark.parametrize("good", [None, 0, 1, 48])
def test_lookback_accepts_whole_hours(creator_sync, good):
    assert assign(creator_sync, lookback_hours=good)["lookback_hours"] == good


@pytest.mark.parametrize("bad", [-1, 1.5, "3", "x", True])
def test_lookback_rejects_anything_else(creator_sync, bad):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="lookback_hours"):
        assign(creator_sync, lookback_hours=bad)
