"""The state database's tables (SQLAlchemy Core), in one place: the Alembic migrations
(creator_sync/store/migrations) create them, and a test compares the two."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
acknowledged_events = sa.Table(
    "acknowledged_events",
    metadata,
    sa.Column("event_key", sa.String(64), primary_key=True),
    sa.Column("user_key", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("batch_key", sa.String(255), nullable=False),
    sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
)
# PostgreSQL only: the sender's ledger read by (user_key, event_key) (Ledger.acknowledged_of), index-only. A
# chunk of users in user-key order (users.jsonl's order) walks one stretch of it, where its event keys
# (SHA-256) land on random pages of the primary key, which the server's cache does not hold at scale. The
# primary key stays the event key: its uniqueness is the exactly-once guard's.
sa.Index(
    "ix_acknowledged_events_user_key",
    acknowledged_events.c.user_key,
    acknowledged_events.c.event_key,
    postgresql_include=["run_id"],
).ddl_if(dialect="postgresql")
user_attribute_hashes = sa.Table(
    "user_attribute_hashes",
    metadata,
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("attr_hash", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
)
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256(run_id, user_key, reason): idempotent
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("user_key", sa.String(255), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False, index=True),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
)
# A batch whose request went out but whose answer never came back (timeout, killed task): Insider may or
# may not have stored it. The record says how to find out (a probe event) and what to acknowledge if so.
in_flight_batches = sa.Table(
    "in_flight_batches",
    metadata,
    sa.Column("batch_key", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fence", sa.String(255), nullable=True),  # the attempt that sent it (None: the run id)
    sa.Column("lease_until", sa.Float, nullable=True),  # its owner's lease (epoch s); None: long passed
)


# What one run did with each user it planned (the run's figures, summed over task attempts):
# sent / vendor_rejected / user_too_large / unchanged / claimed_elsewhere. A later attempt of the same run
# may change an outcome, except "sent" (its events are in the ledger): see Runs.record_outcomes.
run_users = sa.Table(
    "run_users",
    metadata,
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("events", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_run_users_user_key", "user_key", "outcome", "updated_at"),
)
# Per task attempt and vendor: the HTTP client's counters (requests, retries, 429s, ...), so a retried task
# adds its attempts up instead of reporting its last one. Written while the attempt runs.
run_client_stats = sa.Table(
    "run_client_stats",
    metadata,
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("task_key", sa.String(255), primary_key=True),  # task_id[map_index]
    sa.Column("try_number", sa.Integer, primary_key=True),
    sa.Column("vendor", sa.String(32), primary_key=True),
    sa.Column("counters", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# Users a run is about to send. A claim is live while its lease (epoch seconds) has not passed; the sending
# attempt (its fence) renews its leases before every request and releases them when it is done. See
# creator_sync.store.claims.
send_claims = sa.Table(
    "send_claims",
    metadata,
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.String(255), nullable=False, index=True),
    sa.Column("lease_until", sa.Float, nullable=False),  # the lease when claimed (its fence's row renews it)
    sa.Column("fence", sa.String(255), nullable=True, index=True),  # the holding attempt (None: the run id)
)
# One row per fencing token: the attempt's lease, renewed before every request. A claim is live while its
# fence's lease has not passed (a claim without a lease row, written by 0.1.0, while its own lease_until).
send_leases = sa.Table(
    "send_leases",
    metadata,
    sa.Column("fence", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
)


# One row per run and report-producing DAG (creator_sync, replay, offboarding): the run's figures as JSON and
# the human-readable report text. Written by the report step, read by the UI view and the retention DAG.
run_reports = sa.Table(
    "run_reports",
    metadata,
    sa.Column("dag_id", sa.String(250), primary_key=True),
    sa.Column("run_id", sa.String(255), primary_key=True),
    sa.Column("figures", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


# -- offboarding: creators who left (docs/offboarding.md); no PII, keyed by a hash of the InsightIQ user id
offboard_requests = sa.Table(
    "offboard_requests",
    metadata,
    sa.Column("request_key", sa.String(255), primary_key=True),  # user id, or "account:<id>" until resolved
    sa.Column("user_id", sa.String(255), nullable=True),
    sa.Column("account_id", sa.String(255), nullable=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),  # webhook | operator
    sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
)
offboarded_creators = sa.Table(
    "offboarded_creators",
    metadata,
    sa.Column("user_hash", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("offboarded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),  # the disconnect event's own time
    sa.Column("reenabled_at", sa.DateTime(timezone=True), nullable=True),
)
erasure_log = sa.Table(
    "erasure_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("user_hash", sa.String(64), nullable=False, index=True),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),  # erased | already_gone | failed | reenabled
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("purged", sa.Text, nullable=False, default="{}"),  # JSON counts of what was removed locally
)


# -- the webhook receiver (creator_sync.webhooks): deliveries, pending accounts, sync batches
deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("account_id", sa.String(200), nullable=True),
    sa.Column("action", sa.String(20), nullable=False),  # queued | ignored
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)

pending_accounts = sa.Table(
    "webhook_pending_accounts",
    metadata,
    sa.Column("account_id", sa.String(200), primary_key=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("events", sa.Integer, nullable=False, default=1),
)

sync_batches = sa.Table(
    "webhook_sync_batches",
    metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("account_ids", sa.Text, nullable=False),  # JSON list, sorted
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
)

# -- the history path (creator_sync.sync.history): which accounts had their past requested and sent
account_history = sa.Table(
    "account_history",
    metadata,
    sa.Column("account_id", sa.String(200), primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),  # baseline | snapshot | webhook
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    # events before this moment are the history's; the hourly runs send from it on (NULL: baseline)
    sa.Column("takeover_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # known | pending | requested | sent | skipped
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),  # sent or skipped at
    sa.Column("run_id", sa.String(255), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column(
        "reason", sa.String(64), nullable=True
    ),  # a skipped row's: creator_offboarded | account_not_found
    sa.Index("ix_account_history_status", "status", "first_seen_at"),
)

# -- income attributes (creator_sync.pipeline.income): the creators' income items, one row per item however
# often runs read it (hourly, the weekly sweep, targeted, backfill, history), and per creator the totals
# computed from them. Times and amounts are integers (epoch microseconds, amount x 1,000,000): sums are exact
# and the same in any order, on both dialects.
income_items = sa.Table(
    "income_items",
    metadata,
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # transaction | payout
    sa.Column("item_id", sa.String(255), primary_key=True),
    sa.Column("account_id", sa.String(255), nullable=True),
    sa.Column("amount_micros", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),  # ISO 4217, upper case
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(32), nullable=True),
    sa.Column("counted", sa.Boolean, nullable=False),  # its status counts (mapping's income statuses)
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
)
income_totals = sa.Table(
    "income_totals",
    metadata,
    sa.Column("user_key", sa.String(255), primary_key=True),
    sa.Column("totals", sa.Text, nullable=False),  # JSON: creator_sync.store.income.Totals
    sa.Column("as_of_us", sa.BigInteger, nullable=False),  # the moment the recent window ends at
    # when the recent sum next changes with time alone (its oldest item leaves the window); NULL: never
    sa.Column("next_change_us", sa.BigInteger, nullable=True, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
