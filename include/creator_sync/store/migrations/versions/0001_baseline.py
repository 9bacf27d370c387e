"""The state database as the first Alembic-managed release found it (tables made by create_all).

Revision ID: 0001_baseline
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    _ledger()
    _runs()
    _offboarding()
    _webhooks()


def _ledger() -> None:
    op.create_table(
        "acknowledged_events",
        sa.Column("event_key", sa.String(64), primary_key=True),
        sa.Column("user_key", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("batch_key", sa.String(255), nullable=False),
        sa.Column("acked_at", TZ, nullable=False),
    )
    op.create_table(
        "user_attribute_hashes",
        sa.Column("user_key", sa.String(255), primary_key=True),
        sa.Column("attr_hash", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("acked_at", TZ, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("user_key", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("replayed_at", TZ, nullable=True),
    )
    op.create_index("ix_dead_letters_reason", "dead_letters", ["reason"])
    op.create_table(
        "in_flight_batches",
        sa.Column("batch_key", sa.String(255), primary_key=True),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )


def _runs() -> None:
    op.create_table(
        "run_users",
        sa.Column("run_id", sa.String(255), primary_key=True),
        sa.Column("user_key", sa.String(255), primary_key=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "run_client_stats",
        sa.Column("run_id", sa.String(255), primary_key=True),
        sa.Column("task_key", sa.String(255), primary_key=True),
        sa.Column("try_number", sa.Integer, primary_key=True),
        sa.Column("vendor", sa.String(32), primary_key=True),
        sa.Column("counters", sa.Text, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "send_claims",
        sa.Column("user_key", sa.String(255), primary_key=True),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("lease_until", sa.Float, nullable=False),
    )
    op.create_index("ix_send_claims_run_id", "send_claims", ["run_id"])
    op.create_table(
        "run_reports",
        sa.Column("dag_id", sa.String(250), primary_key=True),
        sa.Column("run_id", sa.String(255), primary_key=True),
        sa.Column("figures", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_run_reports_created_at", "run_reports", ["created_at"])


def _offboarding() -> None:
    op.create_table(
        "offboard_requests",
        sa.Column("request_key", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("account_id", sa.String(255), nullable=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("event_time", TZ, nullable=True),
        sa.Column("queued_at", TZ, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_table(
        "offboarded_creators",
        sa.Column("user_hash", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("offboarded_at", TZ, nullable=False),
        sa.Column("left_at", TZ, nullable=True),
        sa.Column("reenabled_at", TZ, nullable=True),
    )
    op.create_table(
        "erasure_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("user_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("purged", sa.Text, nullable=False),
    )
    op.create_index("ix_erasure_log_at", "erasure_log", ["at"])
    op.create_index("ix_erasure_log_user_hash", "erasure_log", ["user_hash"])


def _webhooks() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_table(
        "webhook_pending_accounts",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("first_seen_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
    )
    op.create_table(
        "webhook_sync_batches",
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("account_ids", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(250), nullable=True),
        sa.Column("triggered_at", TZ, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
    )


def downgrade() -> None:
    for table in (
        "webhook_sync_batches",
        "webhook_pending_accounts",
        "webhook_deliveries",
        "erasure_log",
        "offboarded_creators",
        "offboard_requests",
        "run_reports",
        "send_claims",
        "run_client_stats",
        "run_users",
        "in_flight_batches",
        "dead_letters",
        "user_attribute_hashes",
        "acknowledged_events",
    ):
        op.drop_table(table)
