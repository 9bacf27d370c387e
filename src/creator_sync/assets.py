"""The creator-sync Assets (one definition; producers and consumers import it from here)."""

from __future__ import annotations

from airflow.sdk import Asset

# Emitted by creator_sync's report step once Insider holds the run's users; insider_profile_audit runs on it.
INSIDER_USERS = Asset(name="creator_sync_insider_users", uri="creator-sync://insider/users")
