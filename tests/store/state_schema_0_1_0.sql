-- The state database of creator-sync 0.1.0 (before Alembic managed the schema): the DDL SQLAlchemy's
-- create_all wrote on SQLite, read back from sqlite_master in creation order.
CREATE TABLE acknowledged_events (
	event_key VARCHAR(64) NOT NULL, 
	user_key VARCHAR(255) NOT NULL, 
	run_id VARCHAR(255) NOT NULL, 
	batch_key VARCHAR(255) NOT NULL, 
	acked_at DATETIME NOT NULL, 
	PRIMARY KEY (event_key)
);
CREATE TABLE user_attribute_hashes (
	user_key VARCHAR(255) NOT NULL, 
	attr_hash VARCHAR(64) NOT NULL, 
	run_id VARCHAR(255) NOT NULL, 
	acked_at DATETIME NOT NULL, 
	PRIMARY KEY (user_key)
);
CREATE TABLE dead_letters (
	id VARCHAR(64) NOT NULL, 
	run_id VARCHAR(255) NOT NULL, 
	user_key VARCHAR(255) NOT NULL, 
	reason VARCHAR(64) NOT NULL, 
	detail TEXT NOT NULL, 
	payload TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	replayed_at DATETIME, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_dead_letters_reason ON dead_letters (reason);
CREATE TABLE in_flight_batches (
	batch_key VARCHAR(255) NOT NULL, 
	run_id VARCHAR(255) NOT NULL, 
	record TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (batch_key)
);
CREATE TABLE run_users (
	run_id VARCHAR(255) NOT NULL, 
	user_key VARCHAR(255) NOT NULL, 
	outcome VARCHAR(32) NOT NULL, 
	events INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (run_id, user_key)
);
CREATE TABLE run_client_stats (
	run_id VARCHAR(255) NOT NULL, 
	task_key VARCHAR(255) NOT NULL, 
	try_number INTEGER NOT NULL, 
	vendor VARCHAR(32) NOT NULL, 
	counters TEXT NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (run_id, task_key, try_number, vendor)
);
CREATE TABLE send_claims (
	user_key VARCHAR(255) NOT NULL, 
	run_id VARCHAR(255) NOT NULL, 
	lease_until FLOAT NOT NULL, 
	PRIMARY KEY (user_key)
);
CREATE INDEX ix_send_claims_run_id ON send_claims (run_id);
CREATE TABLE run_reports (
	dag_id VARCHAR(250) NOT NULL, 
	run_id VARCHAR(255) NOT NULL, 
	figures TEXT NOT NULL, 
	text TEXT NOT NULL, 
	ok BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (dag_id, run_id)
);
CREATE INDEX ix_run_reports_created_at ON run_reports (created_at);
CREATE TABLE offboard_requests (
	request_key VARCHAR(255) NOT NULL, 
	user_id VARCHAR(255), 
	account_id VARCHAR(255), 
	reason VARCHAR(64) NOT NULL, 
	source VARCHAR(64) NOT NULL, 
	event_time DATETIME, 
	queued_at DATETIME NOT NULL, 
	attempts INTEGER NOT NULL, 
	last_error TEXT, 
	PRIMARY KEY (request_key)
);
CREATE TABLE offboarded_creators (
	user_hash VARCHAR(64) NOT NULL, 
	reason VARCHAR(64) NOT NULL, 
	offboarded_at DATETIME NOT NULL, 
	left_at DATETIME, 
	reenabled_at DATETIME, 
	PRIMARY KEY (user_hash)
);
CREATE TABLE erasure_log (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	run_id VARCHAR(255) NOT NULL, 
	user_hash VARCHAR(64) NOT NULL, 
	reason VARCHAR(64) NOT NULL, 
	outcome VARCHAR(32) NOT NULL, 
	detail TEXT NOT NULL, 
	purged TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_erasure_log_user_hash ON erasure_log (user_hash);
CREATE INDEX ix_erasure_log_at ON erasure_log (at);
CREATE TABLE webhook_deliveries (
	event_id VARCHAR(200) NOT NULL, 
	event VARCHAR(100) NOT NULL, 
	account_id VARCHAR(200), 
	action VARCHAR(20) NOT NULL, 
	body_sha256 VARCHAR(64) NOT NULL, 
	received_at DATETIME NOT NULL, 
	PRIMARY KEY (event_id)
);
CREATE TABLE webhook_pending_accounts (
	account_id VARCHAR(200) NOT NULL, 
	first_seen_at DATETIME NOT NULL, 
	last_seen_at DATETIME NOT NULL, 
	events INTEGER NOT NULL, 
	PRIMARY KEY (account_id)
);
CREATE TABLE webhook_sync_batches (
	batch_id VARCHAR(40) NOT NULL, 
	created_at DATETIME NOT NULL, 
	account_ids TEXT NOT NULL, 
	run_id VARCHAR(250), 
	triggered_at DATETIME, 
	attempts INTEGER NOT NULL, 
	last_error TEXT, 
	PRIMARY KEY (batch_id)
);
