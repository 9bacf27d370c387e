"""Defaults shared by the webhook/audit/manual DAGs (light: imported at DAG-parse time)."""

from __future__ import annotations

from datetime import datetime, timedelta

OWNER = "creator-sync"
START_DATE = datetime(2025, 1, 1)

# Transient vendor errors are retried with exponential backoff; permanent ones (auth, validation, an
# existing web push title) are turned into AirflowFailException by creator_sync.audit.errors.fail_fast.
DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}

INSIGHTIQ_POOL = "insightiq_api"
INSIDER_PROFILE_POOL = "insider_profile"
INSIDER_WEB_PUSH_POOL = "insider_web_push"

CREATOR_SYNC_USERS_ASSET_NAME = "creator_sync_insider_users"
CREATOR_SYNC_USERS_ASSET_URI = "creator-sync://insider/users"
