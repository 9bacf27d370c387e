"""Where a run's report is in the Airflow UI, for the report task's log.

Airflow 3.3 gives a task no sanctioned way to set its own DAG run's note (the Task SDK's execution API
sets a note only on a run it triggers; editing a run needs the public REST API and a user's credentials).
The report is shown by the project's UI plugin instead: the "Sync report" tab of every DAG run page and
the "Creator sync" view, both reading the state store's run_reports. The report task logs this link.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from creator_sync.routes import URL_PREFIX

log = logging.getLogger(__name__)


def report_url(dag_id: str, run_id: str, base_url: str | None = None) -> str:
    """The run's report page; ``base_url`` defaults to Airflow's ``[api] base_url``."""
    if base_url is None:
        from airflow.sdk.configuration import conf

        base_url = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base_url.rstrip('/')}{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def log_report_link(dag_id: str, run_id: str) -> str:
    url = report_url(dag_id, run_id)
    log.info("Run report in the Airflow UI: %s (also the run's 'Sync report' tab)", url)
    return url
