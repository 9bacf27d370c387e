"""The manual DAGs: project operators with one retry policy, Params validated by their JSON schema (what
the trigger form enforces) and rendered into the operators' fields, the web push existing-title path fails
without retry, onboarding never puts the SDK token in XCom."""

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
        ("creator_sync_insider_users", "x-creator-sync://insider/users")
    ]
    assert dag.get_task("audit_profiles").pool == "insider_profile"


@pytest.mark.parametrize("guarded", [True, False])
def test_the_users_asset_is_built_without_the_provider_look_up(monkeypatch, guarded):
    """Every creator_sync task builds the Asset while parsing its DAG file: its `x-` scheme keeps Airflow
    from looking for a provider's URI normalizer (which loads every provider's asset modules). The control
    (the same URI without `x-`) shows the look-up is really reached otherwise."""
    from airflow.sdk import Asset
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from creator_sync.assets import INSIDER_USERS

    def looked_up(self):
        raise AssertionError("the provider look-up ran")

    monkeypatch.setattr(ProvidersManagerTaskRuntime, "asset_uri_handlers", property(looked_up))
    uri = INSIDER_USERS.uri if guarded else INSIDER_USERS.uri.removeprefix("x-")
    if guarded:
        assert Asset(name=INSIDER_USERS.name, uri=uri).uri == uri
    else:
        with pytest.raises(AssertionError, match="provider look-up"):
            Asset(name=INSIDER_USERS.name, uri=uri)


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


def rendered(task, params: dict):
    """The task with its templated fields rendered as a run with these Params would render them."""
    import copy as _copy

    task = _copy.deepcopy(task)
    task.render_template_fields({"params": params})
    return task


def test_manual_dags_chain_project_operators_with_one_retry_policy(dags):
    from creator_sync.dag_defaults import OWNER
    from creator_sync.retry import VENDOR_RETRY_POLICY

    expected = {
        "insider_web_push": ("create_web_push_campaign", "InsiderWebPushOperator", "insider_web_push"),
        "insightiq_onboard_creator": ("onboard_creator", "InsightIQOnboardCreatorOperator", "insightiq_api"),
        "insider_profile_audit": ("audit_profiles", "InsiderProfileAuditOperator", "insider_profile"),
        "insightiq_webhooks_setup": (
            "register_insightiq_webhook",
            "InsightIQWebhookSetupOperator",
            "insightiq_api",
        ),
    }
    for dag_id, (task_id, operator, pool) in expected.items():
        dag = dags[dag_id]
        assert dag.description, f"{dag_id} has no description"
        task = dag.get_task(task_id)
        assert type(task).__name__ == operator
        assert type(task).__module__.startswith("creator_sync.operators.")
        assert task.pool == pool and task.owner == OWNER
        assert task.retry_policy is VENDOR_RETRY_POLICY
        assert task.template_fields and task.ui_color != "#fff"


def test_web_push_fields_render_from_the_form(dags):
    task = rendered(
        dags["insider_web_push"].get_task("create_web_push_campaign"),
        {"title": "Spring", "language": "all_ALL", "is_all": True},
    )
    assert (task.title, task.language, task.is_all) == ("Spring", "all_ALL", "True")


def test_onboarding_and_audit_fields_render_from_the_form(dags):
    from creator_sync.operators._common import as_int, as_list

    onboard = rendered(
        dags["insightiq_onboard_creator"].get_task("onboard_creator"),
        {"name": "Ada", "external_id": "007", "products": ["IDENTITY", "INCOME"]},
    )
    assert (onboard.name, onboard.external_id) == ("Ada", "007")
    assert as_list(onboard.products, "products") == ["IDENTITY", "INCOME"]
    audit = rendered(
        dags["insider_profile_audit"].get_task("audit_profiles"),
        {
            "identifier": None,
            "identifier_type": "uuid",
            "attributes": ["uuid", "c_x"],
            "sample_size": 7,
            "max_quota_units": 50,
        },
    )
    assert audit.identifier == "" and as_list(audit.attributes, "attributes") == ["uuid", "c_x"]
    assert as_int(audit.sample_size, "sample_size") == 7


@pytest.mark.slow
def test_web_push_existing_title_fails_without_retry(dags, sb):
    from creator_sync.hooks.web_push import WebPushTitleExistsError

    params = {"title": "Spring launch", "language": "en_US", "is_all": False}
    task = rendered(dags["insider_web_push"].get_task("create_web_push_campaign"), params)
    created = task.execute({})
    assert created["campaign_id"] > 0 and created["title"] == "Spring launch"
    with pytest.raises(WebPushTitleExistsError, match="already exists") as info:
        task.execute({})
    assert task.retries >= 2  # transient errors are retried; the policy fails this one at once
    assert task.retry_policy.evaluate(info.value, 1, task.retries + 1).action.value == "fail"


@pytest.mark.slow
def test_onboarding_masks_the_token_and_keeps_it_out_of_xcom(dags, sb, monkeypatch):
    import creator_sync.hooks.base as hooks_base
    from creator_sync.operators.onboarding import token_fingerprint

    masked: list[str] = []
    monkeypatch.setattr(hooks_base, "mask", lambda *values: masked.extend(v for v in values if v))
    params = {"name": "Ada", "external_id": "ext-onboard-1", "products": ["IDENTITY", "INCOME"]}
    task = rendered(dags["insightiq_onboard_creator"].get_task("onboard_creator"), params)
    first = task.execute({})
    again = task.execute({})
    assert first["created"] is True and again["created"] is False
    assert first["user_id"] == again["user_id"]
    tokens = [t for t in masked if t.startswith("sdk-")]
    assert len(tokens) == 2
    for result, token in ((first, tokens[0]), (again, tokens[1])):
        assert set(result) == {
            "user_id",
            "external_id",
            "created",
            "products",
            "expires_at",
            "token_fingerprint",
        }
        assert token not in json.dumps(result)
        assert result["token_fingerprint"] == token_fingerprint(token)


def test_onboarding_registers_the_token_with_the_secrets_masker(conn_env, monkeypatch):
    import httpx
    from airflow.sdk._shared.secrets_masker import redact

    from creator_sync.hooks.base import VendorHook
    from creator_sync.operators.onboarding import InsightIQOnboardCreatorOperator

    def respond(request):
        if request.url.path.startswith("/v1/users/external_id/"):
            return httpx.Response(200, json={"id": "user-1"})
        return httpx.Response(200, json={"sdk_token": "sdk-secret-token-123", "expires_at": "2030-01-01"})

    monkeypatch.setattr(VendorHook, "default_transport", httpx.MockTransport(respond))
    op = InsightIQOnboardCreatorOperator(task_id="o", name="Ada", external_id="ext", products=["IDENTITY"])
    result = op.execute({})
    assert result["user_id"] == "user-1" and result["created"] is False
    assert "sdk-secret-token-123" not in json.dumps(result)
    assert "sdk-secret-token-123" not in str(redact("token=sdk-secret-token-123"))
