"""The manual DAGs: Params validated by their JSON schema (what the trigger form enforces), the web push
existing-title path fails without retry, onboarding never puts the SDK token in XCom."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from devtools.connections import validated_params as assign

DAGS = Path(__file__).resolve().parents[2] / "dags"
MY_DAG_FILES = (
    "insider_web_push.py",
    "insightiq_onboard_creator.py",
    "insider_profile_audit.py",
    "insightiq_webhooks_setup.py",
)


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    found = {}
    for name in MY_DAG_FILES:
        bag = DagBag(dag_folder=str(DAGS / name), safe_mode=False)
        assert bag.import_errors == {}, bag.import_errors
        found.update(bag.dags)
    return found


@pytest.mark.parametrize(
    "bad",
    [
        {"title": "x" * 101},
        {"title": ""},
        {"title": 5},
        {"language": "english"},
        {"language": "EN_us"},
        {"language": "en-US"},
        {"is_all": "yes"},
    ],
)
def test_web_push_params_reject_bad_input(dags, bad):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        assign(dags["insider_web_push"], **bad)


def test_web_push_params_accept_good_input(dags):
    good = assign(dags["insider_web_push"], title="x" * 100, language="all_ALL", is_all=True)
    assert good == {"title": "x" * 100, "language": "all_ALL", "is_all": True}
    assert assign(dags["insider_web_push"], title="Launch", language="en_US")["is_all"] is False


def test_web_push_default_title_must_be_filled_in_on_the_form(dags):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        copy.deepcopy(dags["insider_web_push"].params).validate()


@pytest.mark.parametrize(
    "bad",
    [
        {"products": ["IDENTITY", "FOLLOWERS"]},
        {"products": []},
        {"products": ["INCOME", "INCOME"]},
        {"name": ""},
        {"external_id": ""},
    ],
)
def test_onboarding_params_reject_bad_input(dags, bad):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        assign(dags["insightiq_onboard_creator"], **bad)


def test_audit_runs_on_the_creator_sync_users_asset(dags):
    dag = dags["insider_profile_audit"]
    assets = dag.timetable.asset_condition.objects
    assert [(a.name, a.uri) for a in assets] == [
        ("creator_sync_insider_users", "creator-sync://insider/users")
    ]
    assert dag.get_task("audit_profiles").pool == "insider_profile"


@pytest.fixture(scope="module")
def sandbox():
    from devtools.sandbox.launcher import SandboxServers

    with SandboxServers(creators=20, seed=3) as sb:
        yield sb


@pytest.fixture
def sb(sandbox, monkeypatch):
    from devtools.connections import connection_envs, sandbox_hosts

    sandbox.reset()
    for key, value in connection_envs(sandbox_hosts(sandbox)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CREATOR_SYNC_RATE_LIMIT_BACKEND", "local")
    return sandbox


@pytest.mark.slow
def test_web_push_existing_title_fails_without_retry(dags, sb):
    from airflow.sdk.exceptions import AirflowFailException

    task = dags["insider_web_push"].get_task("create_web_push_campaign")
    params = {"title": "Spring launch", "language": "en_US", "is_all": False}
    created = task.python_callable(params=params)
    assert created["campaign_id"] > 0
    with pytest.raises(AirflowFailException, match="already exists"):
        task.python_callable(params=params)
    assert task.retries >= 2  # transient errors are retried; AirflowFailException skips the retries


@pytest.mark.slow
def test_onboarding_masks_the_token_and_keeps_it_out_of_xcom(dags, sb, monkeypatch):
    import creator_sync.audit.manual as manual

    masked: list[str] = []
    monkeypatch.setattr(manual, "_default_mask", masked.append)
    task = dags["insightiq_onboard_creator"].get_task("onboard_creator")
    params = {"name": "Ada", "external_id": "ext-onboard-1", "products": ["IDENTITY", "INCOME"]}
    first = task.python_callable(params=params)
    again = task.python_callable(params=params)
    assert first["created"] is True and again["created"] is False
    assert first["user_id"] == again["user_id"]
    assert len(masked) == 2 and all(t.startswith("sdk-") for t in masked)
    for result, token in ((first, masked[0]), (again, masked[1])):
        assert set(result) == {
            "user_id",
            "external_id",
            "created",
            "products",
            "expires_at",
            "token_fingerprint",
        }
        assert token not in json.dumps(result)
        assert result["token_fingerprint"] == manual.token_fingerprint(token)


def test_onboarding_registers_the_token_with_the_secrets_masker():
    from airflow.sdk._shared.secrets_masker import redact

    import creator_sync.audit.manual as manual

    class Hook:
        def get_user_by_external_id(self, external_id):
            return {"id": "user-1"}

        def create_sdk_token(self, user_id, products):
            return {"sdk_token": "sdk-secret-token-123", "expires_at": "2030-01-01T00:00:00Z"}

    result = manual.onboard_creator(Hook(), "Ada", "ext", ["IDENTITY"])
    assert "sdk-secret-token-123" not in json.dumps(result)
    assert "sdk-secret-token-123" not in str(redact("token=sdk-secret-token-123"))
