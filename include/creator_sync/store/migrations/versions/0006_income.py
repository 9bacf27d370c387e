"""income_items and income_totals: the income items runs read (one row per item) and the per-creator totals
the income attributes are sent from (creator_sync.pipeline.income).

Revision ID: 0006_income
Revises: 0005_account_history
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_income"
down_revision = "0005_account_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "income_items",
        sa.Column("user_key", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("item_id", sa.String(255), primary_key=True),
        sa.Column("account_id", sa.String(255), nullable=True),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("counted", sa.Boolean, nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "income_totals",
        sa.Column("user_key", sa.String(255), primary_key=True),
        sa.Column("totals", sa.Text, nullable=False),
        sa.Column("as_of_us", sa.BigInteger, nullable=False),
        sa.Column("next_change_us", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_income_totals_next_change_us", "income_totals", ["next_change_us"])


def downgrade() -> None:
    op.drop_index("ix_income_totals_next_change_us", "income_totals")
    op.drop_table("income_totals")
    op.drop_table("income_items")
