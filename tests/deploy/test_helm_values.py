"""deploy/helm/values.yaml (Airflow's official Helm chart): the same image, pools, secrets, settings and
worker grace period as docker-compose.yaml.

Not checked here: the chart's published values.schema.json (apache/airflow chart/, ~650 KB) is not vendored
(docs/install.md says to `helm lint` the file against the chart version in use)."""

from __future__ import annotations

import tomllib

import yaml
from deploy_support import REPO
from test_compose import parse_duration

VALUES = REPO / "deploy" / "helm" / "values.yaml"


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def test_the_values_run_this_image_with_celery_and_the_dags_and_plugins_it_carries():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    v = values()
    assert v["images"]["airflow"]["tag"] == version
    assert v["executor"] == "CeleryExecutor"
    assert v["config"]["core"]["dags_folder"] == "/opt/creator-sync/dags"
    assert v["config"]["core"]["plugins_folder"] == "/opt/creator-sync/plugins"
    assert not v["dags"]["gitSync"]["enabled"] and not v["dags"]["persistence"]["enabled"]


def test_secrets_come_from_kubernetes_secrets_and_settings_from_a_config_map():
    v = values()
    from_secrets = {entry["envName"] for entry in v["secret"]}
    assert {"CREATOR_SYNC_STATE_URL", "CREATOR_SYNC_RATE_LIMIT_BACKEND", "AIRFLOW_CONN_INSIDER_DEFAULT"} <= (
        from_secrets
    )
    assert "creator-sync-settings" in v["extraEnvFrom"]
    assert "password" not in VALUES.read_text().lower().replace("<password>", "")


def test_pools_are_imported_from_the_installed_package_after_each_migration():
    command = " ".join(values()["migrateDatabaseJob"]["args"])
    assert "airflow db migrate" in command
    assert "from creator_sync.settings import pools_file; print(pools_file())" in command


def test_the_worker_grace_period_is_the_compose_one(compose):
    grace = parse_duration(compose["services"]["airflow-worker"]["stop_grace_period"])
    assert values()["workers"]["terminationGracePeriodSeconds"] == grace
