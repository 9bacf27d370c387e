"""The `creator-sync` Airflow provider: schema-valid provider info, registered, three connection forms.

The forms are declarative (provider info `conn-fields` / `ui-field-behaviour`, Airflow 3.2+); Airflow reads
them without importing the hooks. The last tests import the hooks themselves (include/creator_sync/hooks/).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
import re

import jsonschema
import pytest
from deploy_support import AIRFLOW, REPO, VENV_BIN, run

from creator_sync.provider import get_provider_info

# connection type -> (hook class, login label, password label): docs/development.md "Connections"
EXPECTED = {
    "insightiq": ("creator_sync.hooks.insightiq.InsightIQHook", "Client ID", "Client secret"),
    "insider": ("creator_sync.hooks.insider.InsiderHook", "Partner name", "Request token"),
    "insider_web_push": ("creator_sync.hooks.web_push.InsiderWebPushHook", "Partner ID", "API key"),
}
SECRET_NAME = re.compile(r"secret|token|password|api_?key|private", re.IGNORECASE)


def airflow_schema(name: str) -> dict:
    return json.loads(importlib.resources.files("airflow").joinpath(name).read_text())


def connection_types() -> dict[str, dict]:
    return {conn["connection-type"]: conn for conn in get_provider_info()["connection-types"]}


def test_provider_info_validates_against_airflows_runtime_schema():
    schema = airflow_schema("provider_info.schema.json")
    jsonschema.validators.validator_for(schema)(schema).validate(get_provider_info())


def test_connection_types_validate_against_the_strict_provider_yaml_schema():
    """provider.yaml.schema.json defines conn-fields / ui-field-behaviour strictly (no extra keys)."""
    schema = airflow_schema("provider.yaml.schema.json")
    subschema = schema["properties"]["connection-types"]
    jsonschema.validators.validator_for(schema)(subschema).validate(get_provider_info()["connection-types"])

    behaviour_schema = airflow_schema("customized_form_field_behaviours.schema.json")
    for conn in connection_types().values():
        behaviour = conn["ui-field-behaviour"]
        jsonschema.validate(
            {
                "hidden_fields": behaviour["hidden-fields"],
                "relabeling": behaviour["relabeling"],
                "placeholders": behaviour["placeholders"],
            },
            behaviour_schema,
        )


def test_package_name_version_and_entry_point_match_the_installed_distribution():
    info = get_provider_info()
    assert info["package-name"] == "creator-sync"
    pyproject_version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert info["versions"] == [pyproject_version.group(1)]
    assert importlib.metadata.version("creator-sync") == pyproject_version.group(1)
    registered = [
        entry_point
        for entry_point in importlib.metadata.entry_points(group="apache_airflow_provider")
        if entry_point.dist and entry_point.dist.name == "creator-sync"
    ]
    assert [entry_point.value for entry_point in registered] == ["creator_sync.provider:get_provider_info"], (
        "the provider entry point is not installed; run `make install` (pip install --no-deps -e .)"
    )


def test_connection_forms_follow_the_contract():
    conns = connection_types()
    assert set(conns) == set(EXPECTED)
    for conn_type, (hook_class, login_label, password_label) in EXPECTED.items():
        conn = conns[conn_type]
        assert conn["hook-class-name"] == hook_class
        behaviour = conn["ui-field-behaviour"]
        assert not {"host", "login", "password"} & set(behaviour["hidden-fields"]), conn_type
        assert behaviour["relabeling"]["login"] == login_label
        # the secret is the standard password field: Fernet-encrypted, rendered as a password input, masked
        assert behaviour["relabeling"]["password"] == password_label
        for name, field in conn.get("conn-fields", {}).items():
            if SECRET_NAME.search(name) or SECRET_NAME.search(field["label"]):
                assert field["schema"].get("format") == "password", f"{conn_type}.{name} must be sensitive"
    environment = conns["insightiq"]["conn-fields"]["environment"]
    assert environment["schema"]["enum"] == ["sandbox", "production"]
    assert environment["schema"].get("format") != "password"


def test_airflow_providers_list_shows_creator_sync():
    result = run([str(AIRFLOW), "providers", "list", "--output", "json"])
    assert result.returncode == 0, result.stderr[-1500:]
    providers = {p["package_name"]: p for p in json.loads(result.stdout[result.stdout.index("[") :])}
    assert "creator-sync" in providers, sorted(providers)
    assert providers["creator-sync"]["version"] == get_provider_info()["versions"][0]


UI_METADATA = """
import json
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
from airflow.providers_manager import ProvidersManager

wanted = {"insightiq", "insider", "insider_web_push"}
meta = [m.model_dump() for m in HookMetaService.hook_meta_data() if m.connection_type in wanted]
widgets = {
    key: {"sensitive": info.is_sensitive, "field": info.field}
    for key, info in ProvidersManager()._connection_form_widgets_from_metadata.items()
    if key.split("__")[1] in wanted
}
print("RESULT " + json.dumps({"meta": meta, "widgets": widgets}))
"""


def test_api_server_builds_the_connection_forms_from_the_provider_info():
    """What the UI's /ui/connections/hook_meta returns (no hook import needed)."""
    result = run([str(VENV_BIN / "python"), "-c", UI_METADATA])
    assert result.returncode == 0, result.stderr[-1500:]
    data = json.loads(result.stdout.split("RESULT ", 1)[1])
    meta = {m["connection_type"]: m for m in data["meta"]}
    assert set(meta) == set(EXPECTED)
    for conn_type, (hook_class, login_label, password_label) in EXPECTED.items():
        fields = meta[conn_type]["standard_fields"]
        assert meta[conn_type]["hook_class_name"] == hook_class
        assert fields["login"]["title"] == login_label and not fields["login"]["hidden"]
        assert fields["password"]["title"] == password_label and not fields["password"]["hidden"]
        assert fields["port"]["hidden"] and fields["url_schema"]["hidden"]
    environment = meta["insightiq"]["extra_fields"]["environment"]
    assert environment["schema"]["enum"] == ["sandbox", "production"]
    assert environment["value"] == "sandbox"
    assert data["widgets"]["extra__insightiq__environment"]["sensitive"] is False
    assert not any(
        SECRET_NAME.search(key) and not widget["sensitive"] for key, widget in data["widgets"].items()
    )


# --- With the hooks (include/creator_sync/hooks/) -----------------------------------------------------------


@pytest.mark.parametrize("conn_type", sorted(EXPECTED))
def test_hook_class_matches_its_connection_type(conn_type):
    hook_path = EXPECTED[conn_type][0]
    module_name, class_name = hook_path.rsplit(".", 1)
    hook = getattr(importlib.import_module(module_name), class_name)
    assert hook.conn_type == conn_type
    assert hook.hook_name == connection_types()[conn_type]["hook-name"]
    assert hook.conn_name_attr and hook.default_conn_name == f"{conn_type}_default"
    # declarative forms only: the Python form hooks are deprecated since Airflow 3.2
    for deprecated in ("get_ui_field_behaviour", "get_connection_form_widgets"):
        assert not any(
            deprecated in vars(cls) for cls in hook.__mro__ if cls.__module__.startswith("creator_sync")
        )


def test_airflow_registers_the_three_hooks():
    """`airflow providers hooks` imports every hook class through the providers manager."""
    result = run([str(AIRFLOW), "providers", "hooks", "--output", "json"])
    assert result.returncode == 0, result.stderr[-1500:]
    hooks = {h["connection_type"]: h for h in json.loads(result.stdout[result.stdout.index("[") :])}
    for conn_type, (hook_class, _, _) in EXPECTED.items():
        assert conn_type in hooks, f"{conn_type} missing (hook import failed?): {result.stderr[-1500:]}"
        assert hooks[conn_type]["class"] == hook_class
        assert hooks[conn_type]["package_name"] == "creator-sync"


def test_every_connection_form_offers_the_extras_the_hooks_read():
    from creator_sync.hooks.base import RETRIES_EXTRA, TIMEOUT_EXTRA

    for conn_type, conn in connection_types().items():
        fields = conn.get("conn-fields", {})
        assert {TIMEOUT_EXTRA, RETRIES_EXTRA} <= set(fields), conn_type
        assert fields[RETRIES_EXTRA]["schema"]["type"] == ["integer", "null"]
        assert fields[TIMEOUT_EXTRA]["schema"]["minimum"] > 0
