"""Airflow plugin: the "Creator sync" view (recent runs, charts, dead letters, replay) in the Airflow UI.

Mounts creator_sync.ui.app on the API server at ``/creator-sync-ui`` and adds two entries to the UI:
"Creator sync" in the navigation (Browse menu) and a "Sync report" tab on every DAG run page. Both are
iframes of this app, which answers only to a logged-in Airflow user. See docs/ui.md.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from creator_sync.routes import URL_PREFIX
from creator_sync.ui.app import create_app

HREF = URL_PREFIX.lstrip("/")  # relative: resolved against the Airflow UI's base URL


class CreatorSyncUIPlugin(AirflowPlugin):
    name = "creator_sync_ui"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "creator-sync view"}]
    external_views = [
        {
            "name": "Creator sync",
            "href": f"{HREF}/",
            "url_route": "creator-sync",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Sync report",
            "href": f"{HREF}/runs/{{DAG_ID}}/{{RUN_ID}}",
            "url_route": "creator-sync-report",
            "destination": "dag_run",
        },
    ]
