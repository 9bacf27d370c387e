"""Where a run's report is shown besides the task log: the link to the UI plugin's view (logged), and the DAG
run's note through Airflow's public REST API (tasks never touch the metadata DB).

The note is written when a connection `creator_sync_airflow_api` exists (host = API server URL, login /
password of a user allowed to edit DAG runs). It is a convenience: the report is also in the task log,
report.md, XCom and the state store's run_reports, so a failure here is logged and otherwise ignored.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

NOTE_CONN_ID = "creator_sync_airflow_api"


def set_run_note(dag_id: str, run_id: str, text: str) -> bool:
    from airflow.sdk import BaseHook

    from creator_sync.routes.links import log_report_link

    log_report_link(dag_id, run_id)  # the report is in the UI plugin's view in every deployment
    try:
        conn = BaseHook.get_connection(NOTE_CONN_ID)
    except Exception:
        log.info(
            "no %s connection: the report is in this log, report.md and XCom, not the run note", NOTE_CONN_ID
        )
        return False
    from creator_sync.airflow_api import AirflowAPI

    try:
        AirflowAPI(conn.host.rstrip("/"), conn.login, conn.password).set_note(dag_id, run_id, text)
    except Exception as exc:  # never log the exception text: it could carry the request
        log.warning("could not set the run note: %s", type(exc).__name__)
        return False
    return True
