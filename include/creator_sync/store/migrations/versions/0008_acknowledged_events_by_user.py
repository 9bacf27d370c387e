"""acknowledged_events by user (PostgreSQL): the sender's plan reads the ledger by (user_key, event_key)
from an index that holds run_id too (creator_sync.store.ledger.Ledger.acknowledged_of), so a chunk of users
in user-key order reads one stretch of it, index-only. SQLite reads by the event key (its primary key) and
gets no index. The primary key (event_key) is left as it is: the exactly-once guard's key.

Revision ID: 0008_acknowledged_events_by_user
Revises: 0007_account_history_reason
"""

from alembic import op

revision = "0008_acknowledged_events_by_user"
down_revision = "0007_account_history_reason"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_acknowledged_events_user_key",
            "acknowledged_events",
            ["user_key", "event_key"],
            postgresql_include=["run_id"],
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_acknowledged_events_user_key", "acknowledged_events")
