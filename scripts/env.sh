# Sourced by the demo scripts: the embedded (SQLite, LocalExecutor) Airflow inside the repo.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${CREATOR_SYNC_RUN_DIR:-$REPO/.run}"  # pids and logs of what `make demo` started
export AIRFLOW_HOME="${CREATOR_SYNC_AIRFLOW_HOME:-$REPO/.airflow}"
set -a
# shellcheck disable=SC1091
source "$REPO/config/airflow.env"
set +a
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$REPO/plugins"
# The demo's login: Airflow's SimpleAuthManager with one admin user; Airflow generates its password into
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated and `make demo` prints it. Production containers
# use the FAB auth manager (docker-compose.yaml).
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
# The UI's connection "Test" button, off by default in Airflow because it runs the connection's hook in the
# api-server. The demo enables it: its connections point at the local sandboxes and the project's hooks test
# with one request that changes nothing (creator_sync.hooks.base.VendorHook.test_connection).
export AIRFLOW__CORE__TEST_CONNECTION="Enabled"
# SQLite busy timeout for the embedded stack (see devtools/airflow_stack.py:SQLITE_CONNECT_ARGS).
# devtools/ is not installed: the Airflow processes import that setting from the checkout.
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="devtools.airflow_stack.SQLITE_CONNECT_ARGS"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export CREATOR_SYNC_DATA_URL="${CREATOR_SYNC_DATA_URL:-file://$AIRFLOW_HOME/data}"
export CREATOR_SYNC_RATE_LIMIT_BACKEND="${CREATOR_SYNC_RATE_LIMIT_BACKEND:-file://$RUN_DIR/rate-limits}"
export PATH="$REPO/.venv/bin:$PATH"
# InsightIQ's webhooks reach the demo's API server (the receiver plugin, creator_sync.webhooks.app): a
# connect or disconnect at the sandbox starts a targeted creator_sync run, and a newly connected account's
# past is owed to creator_sync_history. `make demo` registers the webhook (devtools.demo_run).
export CREATOR_SYNC_PUBLIC_BASE_URL="${CREATOR_SYNC_PUBLIC_BASE_URL:-http://localhost:${AIRFLOW__API__PORT:-8080}}"
# The demo's runs read contents and income over the whole engagement window (a look-back as long as it), so
# the one sync `make demo` shows sends the engagement and income attributes: an hourly run reads only its
# hour and leaves the engagement attributes out (creator_sync.pipeline.engagement). A deployment gets its
# first full-window values from a backfill, a targeted run or one run with the `lookback_hours` Param.
if [[ -z "${CREATOR_SYNC_LOOKBACK_HOURS:-}" ]]; then
  CREATOR_SYNC_LOOKBACK_HOURS="$(python -c 'from creator_sync import settings; print(24 * settings.current().engagement_window_days)')"
  export CREATOR_SYNC_LOOKBACK_HOURS
fi
mkdir -p "$RUN_DIR" "$AIRFLOW_HOME"

# is_running NAME: true when .run/NAME.pid names a live process group leader.
is_running() {
  local pidfile="$RUN_DIR/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# start_background NAME COMMAND...: start COMMAND in its own session, record its pid.
start_background() {
  local name="$1"; shift
  setsid "$@" >"$RUN_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# wait_for_url URL SECONDS NAME
wait_for_url() {
  local url="$1" deadline=$((SECONDS + $2)) name="$3"
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      echo "demo: $name did not answer at $url within $2 s; see $RUN_DIR/$name.log" >&2
      tail -n 30 "$RUN_DIR/$name.log" >&2 || true
      return 1
    fi
    sleep 1
  done
}

# retry_locked COMMAND...: run an Airflow CLI write while the scheduler runs; SQLite may refuse it at once with
# "database is locked" (see devtools/airflow_stack.py:AirflowStack.airflow_write), so retry that error only.
retry_locked() {
  local out attempt
  for attempt in 1 2 3 4 5; do
    if out=$("$@" 2>&1); then printf '%s\n' "$out"; return 0; fi
    grep -q "database is locked" <<<"$out" || break
    sleep $((2 * attempt))
  done
  printf '%s\n' "$out" >&2
  return 1
}
