"""One lease row per fencing token: an attempt renews one row before every request, however many users it
holds (renewing every claim row made a million-creator run's renewals quadratic), and claims are found by
their fence for release.

Revision ID: 0003_fence_leases
Revises: 0002_fencing
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_fence_leases"
down_revision = "0002_fencing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_leases",
        sa.Column("fence", sa.String(255), primary_key=True),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
    )
    op.create_index("ix_send_claims_fence", "send_claims", ["fence"])


def downgrade() -> None:
    op.drop_index("ix_send_claims_fence", "send_claims")
    op.drop_table("send_leases")
