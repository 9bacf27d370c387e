#!/usr/bin/env bash
# `make demo`: sandboxes + embedded Airflow (SQLite, LocalExecutor) + pools/connections + one creator sync.
# Safe to run again: running pieces are reused, pools are re-imported, existing connections are kept.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO"

CREATORS="${CREATORS:-1000}"
UI_URL="http://localhost:${AIRFLOW__API__PORT:-8080}"

if is_running sandbox; then
  echo "demo: sandboxes already running (pid $(cat "$RUN_DIR/sandbox.pid"))"
else
  echo "demo: starting vendor sandboxes ($CREATORS creators)"
  start_background sandbox python -m devtools.sandbox --creators "$CREATORS"
fi
wait_for_url http://127.0.0.1:8901/_sandbox/stats 60 sandbox
wait_for_url http://127.0.0.1:8902/_sandbox/stats 10 sandbox
wait_for_url http://127.0.0.1:8903/_sandbox/stats 10 sandbox

if is_running airflow; then
  echo "demo: Airflow already running (pid $(cat "$RUN_DIR/airflow.pid"))"
else
  echo "demo: starting airflow standalone (first start migrates the database, about a minute)"
  airflow db migrate >"$RUN_DIR/db-migrate.log" 2>&1
  start_background airflow airflow standalone
fi
wait_for_url "$UI_URL/api/v2/monitor/health" 240 airflow

echo "demo: loading pools and connections from config/"
retry_locked airflow pools import include/creator_sync/resources/pools.json >/dev/null
# Connections that exist are kept (a user may have edited them in the UI); CREATOR_SYNC_CONNECTIONS_OVERWRITE=true
# resets them to config/connections.json.
overwrite=()
if [[ "${CREATOR_SYNC_CONNECTIONS_OVERWRITE:-false}" == "true" ]]; then
  overwrite=(--overwrite)
fi
retry_locked airflow connections import "${overwrite[@]}" config/connections.json >/dev/null
# No connection holds an Airflow login: any task can read every connection, so an admin password stored in
# one would let any task act as admin. devtools.demo_run writes the run note itself, with the admin login
# it reads from the password file. The connection earlier demos created is removed.
if airflow connections get creator_sync_airflow_api >/dev/null 2>&1; then
  retry_locked airflow connections delete creator_sync_airflow_api >/dev/null
fi
airflow pools list
airflow connections list --output table | cut -c1-120

if [[ -f dags/creator_sync_dag.py ]]; then
  python -m devtools.demo_run --dag-id creator_sync
else
  echo "demo: the creator_sync DAG is not in dags/ yet; start-up only."
fi

password_file="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
echo
echo "Airflow UI: $UI_URL"
if [[ -f "$password_file" ]]; then
  echo "Login: $(python -c 'import json,sys; d=json.load(open(sys.argv[1])); print(", ".join(f"{u} / {p}" for u, p in d.items()))' "$password_file")"
fi
echo "Sandboxes: InsightIQ http://127.0.0.1:8901  Insider http://127.0.0.1:8902  Web push http://127.0.0.1:8903"
echo "Stop everything with: make stop"
