"""Test helpers: Airflow connections as ``AIRFLOW_CONN_<ID>`` JSON env vars from config/connections.json, and
DAG Params validated as the trigger form would."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

CONNECTIONS_FILE = Path(__file__).resolve().parents[1] / "config" / "connections.json"


def connections_file_entries() -> dict[str, dict[str, Any]]:
    return json.loads(CONNECTIONS_FILE.read_text())


def connection_env_value(entry: dict[str, Any], **overrides: Any) -> str:
    """JSON form of a connection for ``AIRFLOW_CONN_<ID>``."""
    merged = {**entry, **overrides}
    extra = merged.get("extra")
    if isinstance(extra, str):
        extra = json.loads(extra) if extra else {}
    value = {
        "conn_type": merged["conn_type"],
        "host": merged.get("host") or "",
        "login": merged.get("login"),
        "password": merged.get("password"),
    }
    if extra:
        value["extra"] = extra
    return json.dumps(value)


def connection_envs(hosts: dict[str, str] | None = None, **overrides: dict[str, Any]) -> dict[str, str]:
    """``{"AIRFLOW_CONN_INSIGHTIQ_DEFAULT": ..., ...}`` from config/connections.json.

    ``hosts``: conn_id -> base URL (e.g. the sandbox's). ``overrides``: conn_id -> field overrides.
    """
    env = {}
    for conn_id, entry in connections_file_entries().items():
        fields = dict(overrides.get(conn_id, {}))
        if hosts and conn_id in hosts:
            fields["host"] = hosts[conn_id]
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = connection_env_value(entry, **fields)
    return env


def sandbox_hosts(sandbox) -> dict[str, str]:
    """conn_id -> URL for an ``devtools.sandbox.launcher.SandboxServers``."""
    return {
        "insightiq_default": sandbox.insightiq_url,
        "insider_default": sandbox.insider_url,
        "insider_web_push_default": sandbox.web_push_url,
    }


def validated_params(dag: Any, **values: Any) -> dict[str, Any]:
    """The DAG's Params with ``values`` filled in, validated against each Param's JSON schema (raises like
    the trigger form refuses)."""
    params = copy.deepcopy(dag.params)
    for key, value in values.items():
        params[key] = value
    return params.validate()
