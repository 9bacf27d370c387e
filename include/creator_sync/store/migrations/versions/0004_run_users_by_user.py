"""run_users by user: the error-callback receiver asks which of a callback's users a run sent recently
(creator_sync.webhooks.sent_index), a lookup by user key over every run's rows.

Revision ID: 0004_run_users_by_user
Revises: 0003_fence_leases
"""

from alembic import op

revision = "0004_run_users_by_user"
down_revision = "0003_fence_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_run_users_user_key", "run_users", ["user_key", "outcome", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_run_users_user_key", "run_users")
