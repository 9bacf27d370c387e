"""The creator-sync Assets (one definition; producers and consumers import it from here).

The URI scheme starts with `x-`: Airflow keeps such a URI as it is, while any other scheme (besides file)
makes the Asset's constructor look for a provider's normalizer, which loads every installed provider's
asset modules. Every task process of a DAG that names the Asset builds it while parsing the DAG file, so
that look-up would be paid by each task (about 1 s on an idle machine, several seconds on a loaded one).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

# Emitted by creator_sync's `report` task after a run that sent users (never by a dry run, never by a run
# that does not reconcile); insider_profile_audit runs on it. extra = {"run_id", "users_path", "sent"}.
INSIDER_USERS = Asset(name="creator_sync_insider_users", uri="x-creator-sync://insider/users")
# The report task's outlet. A task whose outlet is the Asset itself emits an event on every success, a dry
# run's included; through an alias it emits only the events it adds (creator_sync.sync.steps.announce_users).
INSIDER_USERS_SENT = AssetAlias(name="creator_sync_insider_users_sent")
