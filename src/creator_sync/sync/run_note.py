"""Write a DAG run's note through Airflow's public REST API (tasks never touch the metadata DB).

Used when a connection `creator_sync_airflow_api` exists: host = API server URL, login / password of a user
allowed to edit DAG runs. The note is a convenience: the report is also in the task log, report.md, XCom and
the state store's run_reports, so a failure here is logged and otherwise ignored.
"""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger(__name__)

NOTE_CONN_ID = "creator_sync_airflow_api"
NOTE_MAX_CHARS = 1000  # Airflow's note column


def set_run_note(dag_id: str, run_id: str, text: str, *, timeout: float = 30.0) -> bool:
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(NOTE_CONN_ID)
    except Exception:
        log.info(
            "no %s connection: the report is in this log, report.md and XCom, not the run note", NOTE_CONN_ID
        )
        return False
    base = (conn.host or "").rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=timeout) as client:
            token = client.post("/auth/token", json={"username": conn.login, "password": conn.password})
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            response = client.patch(
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}",
                json={"note": text[:NOTE_MAX_CHARS]},
                headers=headers,
            )
            response.raise_for_status()
    except Exception as exc:  # never log the exception text: it could carry the request
        log.warning("could not set the run note: %s", type(exc).__name__)
        return False
    return True
