"""Fencing tokens: a claim and an in-flight marker name the task attempt (fence) that holds them, and a
marker carries its owner's lease, so a later attempt knows when the marker may be probed.

Revision ID: 0002_fencing
Revises: 0001_baseline
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_fencing"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_claims") as batch:
        batch.add_column(sa.Column("fence", sa.String(255), nullable=True))
    with op.batch_alter_table("in_flight_batches") as batch:
        batch.add_column(sa.Column("fence", sa.String(255), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("in_flight_batches") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("fence")
    with op.batch_alter_table("send_claims") as batch:
        batch.drop_column("fence")
