"""Who may do what in the view, decided by the configured Airflow auth manager (FAB, Simple, Keycloak...).

Each name here is a FastAPI dependency of creator_sync.ui.app's routes; tests replace them with
``app.dependency_overrides[access.read_access] = ...``. The user comes from Airflow's ``get_user``: the
JWT the Airflow UI holds in its ``_token`` cookie, or an ``Authorization: Bearer`` token.
"""

from __future__ import annotations

from airflow.api_fastapi import app as airflow_app
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from airflow.models.dag import DagModel

SYNC_DAG = "creator_sync"
REPLAY_DAG = "creator_sync_replay"

# Read access to creator_sync DAG runs: the overview and the dead letters.
read_access = requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=SYNC_DAG)
# Read access to the runs of the DAG named in the path (``/runs/{dag_id}/...``): a run's report.
report_access = requires_access_dag("GET", DagAccessEntity.RUN)
# Permission to create creator_sync_replay runs: the replay button.
replay_access = requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=REPLAY_DAG)


def edit_access(user: GetUserDep) -> bool:
    """Whether the user may edit the creator_sync DAG (the check behind ``PATCH /api/v2/dags/creator_sync``):
    such users see unmasked dead-letter previews."""
    details = DagDetails(id=SYNC_DAG, team_name=DagModel.get_team_name(SYNC_DAG))
    return bool(airflow_app.get_auth_manager().is_authorized_dag(method="PUT", details=details, user=user))


async def user_name(user: GetUserDep) -> str:
    """The logged-in user's name: replay runs are triggered in it."""
    return user.get_name()
