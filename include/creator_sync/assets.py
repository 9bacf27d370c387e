"""The creator-sync Assets (one definition; producers and consumers import it from here)."""

from __future__ import annotations

from airflow.sdk import Asset

# Emitted by creator_sync's `publish` task after a run that sent users (never by a dry run);
# insider_profile_audit runs on it. extra = {"run_id", "users_path", "sent"}.
INSIDER_USERS = Asset(name="creator_sync_insider_users", uri="creator-sync://insider/users")
