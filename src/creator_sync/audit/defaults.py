"""Defaults shared by the webhook/audit/manual DAGs (light: imported at DAG-parse time)."""

from __future__ import annotations

from datetime import datetime, timedelta

from creator_sync.dag_defaults import default_args

START_DATE = datetime(2025, 1, 1)

# Transient vendor errors are retried with exponential backoff; permanent ones (auth, validation, an
# existing web push title) are turned into AirflowFailException by creator_sync.audit.errors.fail_fast.
# (the shared defaults of creator_sync.dag_defaults: timeout, failure alerts)
DEFAULT_ARGS = default_args(retry_delay=timedelta(seconds=30))

INSIGHTIQ_POOL = "insightiq_api"
INSIDER_PROFILE_POOL = "insider_profile"
INSIDER_WEB_PUSH_POOL = "insider_web_push"

CREATOR_SYNC_USERS_ASSET_NAME = "creator_sync_insider_users"
CREATOR_SYNC_USERS_ASSET_URI = "creator-sync://insider/users"
