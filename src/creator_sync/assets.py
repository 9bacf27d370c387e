"""The Assets creator-sync produces (one definition for every DAG that emits or waits for them)."""

from __future__ import annotations

from airflow.sdk import Asset

# Emitted by creator_sync's `publish` task after a run that sent users (never by a dry run); the profile
# audit DAG is scheduled on it. extra = {"run_id", "users_path", "sent"}.
INSIDER_USERS = Asset(name="creator_sync_insider_users", uri="creator-sync://insider/users")
