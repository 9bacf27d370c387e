"""account_history: the accounts whose past the history path (creator_sync_history) requested at InsightIQ
and sent to Insider, so every account's history is sent once.

Revision ID: 0005_account_history
Revises: 0004_run_users_by_user
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_account_history"
down_revision = "0004_run_users_by_user"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_history",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("takeover_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_account_history_status", "account_history", ["status", "first_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_account_history_status", "account_history")
    op.drop_table("account_history")
