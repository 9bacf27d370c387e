"""account_history.reason: why a `skipped` row's past is not sent (creator_offboarded, account_not_found),
so an account InsightIQ no longer has, or an offboarded creator's, leaves the owed rows with its reason.

Revision ID: 0007_account_history_reason
Revises: 0006_income
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_account_history_reason"
down_revision = "0006_income"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("account_history", sa.Column("reason", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_history") as batch:
        batch.drop_column("reason")
