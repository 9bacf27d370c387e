#!/usr/bin/env bash
# The `airflow-init` service of docker-compose.yaml (runs once per `docker compose up`, before the other
# Airflow services start). Safe to run again:
#   1. airflow db migrate                                  (metadata DB on the postgres service)
#   2. the project state DB (CREATOR_SYNC_STATE_URL)       if PostgreSQL: its role (when it is not the
#                                                          metadata DB's user: a login role, no superuser)
#                                                          and its database, owned by that role
#   3. the data directory (CREATOR_SYNC_DATA_URL)          created if it is file://
#   4. the admin user: FAB auth manager (compose)          created from AIRFLOW_ADMIN_USERNAME/PASSWORD if it
#                                                          does not exist (an existing user is left alone);
#      SimpleAuthManager                                   its password file entry from AIRFLOW_ADMIN_PASSWORD
#   5. airflow pools import <creator_sync.settings.pools_file()>   the same file `make demo` imports (the
#                                                          installed package's resources/pools.json unless
#                                                          CREATOR_SYNC_POOLS_FILE is set); re-importing
#                                                          updates the slots of existing pools
#   6. airflow connections import config/connections.json  the same file `make demo` imports, with the
#                                                          sandbox address 127.0.0.1 rewritten to the
#                                                          compose service ($CREATOR_SYNC_SANDBOX_HOST,
#                                                          default `sandbox`). Existing connections are kept
#                                                          (no --overwrite) so real connections set in the UI
#                                                          or CLI survive restarts; CREATOR_SYNC_CONNECTIONS_OVERWRITE=true
#                                                          resets them to the file, CREATOR_SYNC_CONNECTIONS_FILE=""
#                                                          skips the import.
# `--connections-only`: step 6 alone (the compose service airflow-sandbox-connections, profile `sandbox`).
# Runs from the repository root ($CREATOR_SYNC_HOME, /opt/creator-sync in the image).
set -euo pipefail
cd "${CREATOR_SYNC_HOME:-$(cd "$(dirname "$0")/.." && pwd)}"
CONNECTIONS_ONLY=false
[[ "${1:-}" == "--connections-only" ]] && CONNECTIONS_ONLY=true

for required in AIRFLOW__CORE__FERNET_KEY AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__API__SECRET_KEY; do
  if [[ -z "${!required:-}" ]]; then
    echo "init: $required is not set; copy .env.example to .env and fill it in" >&2
    exit 1
  fi
done

# The pools file the installed creator_sync package reads (in the image: inside the installed wheel).
POOLS_FILE="${CREATOR_SYNC_POOLS_FILE:-$(python -c 'from creator_sync.settings import pools_file; print(pools_file())')}"
CONNECTIONS_FILE="${CREATOR_SYNC_CONNECTIONS_FILE-config/connections.json}"
SANDBOX_HOST="${CREATOR_SYNC_SANDBOX_HOST:-sandbox}"

if [[ "$CONNECTIONS_ONLY" == "false" ]]; then
echo "init: airflow db migrate"
airflow db migrate

echo "init: project state DB and data directory"
python - <<'PY'
import json
import os
from pathlib import Path
from urllib.parse import urlparse

state_url = os.environ.get("CREATOR_SYNC_STATE_URL", "")
if state_url.startswith("postgresql"):
    import psycopg2
    from psycopg2 import sql
    from sqlalchemy.engine import make_url

    url = make_url(state_url)
    # The metadata DB's user (the server's superuser in compose) creates the state role and database; on
    # another server the state URL's own user has to be able to.
    admin_url = make_url(os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or state_url)
    if (admin_url.host, admin_url.port or 5432) != (url.host, url.port or 5432):
        admin_url = url
    admin = psycopg2.connect(
        host=url.host,
        port=url.port or 5432,
        user=admin_url.username,
        password=admin_url.password,
        dbname="postgres",
    )
    admin.autocommit = True
    role = sql.Identifier(url.username)
    with admin.cursor() as cur:
        if url.username != admin_url.username:
            # the state role: logs in, owns the state DB, nothing else (no superuser, no CREATEDB/CREATEROLE)
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (url.username,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(
                sql.SQL(verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s").format(role),
                (url.password,),
            )
            print(f"init: state role {url.username!r} {'altered' if verb == 'ALTER' else 'created'}")
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
        if cur.fetchone():
            print(f"init: state DB {url.database!r} exists")
        else:
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(url.database), role))
            print(f"init: created state DB {url.database!r} owned by {url.username!r}")
    admin.close()
elif state_url:
    print(f"init: state DB {urlparse(state_url).scheme} URL left to the pipeline")

data_url = os.environ.get("CREATOR_SYNC_DATA_URL", "")
if data_url.startswith("file://"):
    path = Path(urlparse(data_url).path)
    path.mkdir(parents=True, exist_ok=True)
    print(f"init: data directory {path}")

password = os.environ.get("AIRFLOW_ADMIN_PASSWORD")
passwords_file = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
fab = "FabAuthManager" in os.environ.get("AIRFLOW__CORE__AUTH_MANAGER", "")
if password and passwords_file and not fab:
    users = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    admin_user = users.split(",")[0].split(":")[0].strip()
    path = Path(passwords_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text() or "{}") if path.exists() else {}
    current[admin_user] = password
    path.write_text(json.dumps(current) + "\n")
    path.chmod(0o600)
    print(f"init: password of {admin_user!r} set in {path}")
PY

if [[ "${AIRFLOW__CORE__AUTH_MANAGER:-}" == *FabAuthManager* && -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]]; then
  # What `airflow users create` does, with the password read from the environment inside the process (a
  # --password argument would be visible to every user of the host in the process list). An existing user
  # (and the password it has now) is left alone.
  python - <<'PY'
import os

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
from airflow.providers_manager import ProvidersManager

ProvidersManager().initialize_providers_configuration()
username = os.environ.get("AIRFLOW_ADMIN_USERNAME") or "admin"
with get_application_builder() as appbuilder:
    if appbuilder.sm.find_user(username=username):
        print(f"init: {username} already exists in the db")
    else:
        role = appbuilder.sm.find_role("Admin")
        email = os.environ.get("AIRFLOW_ADMIN_EMAIL") or "admin@example.com"
        password = os.environ["AIRFLOW_ADMIN_PASSWORD"]
        if not appbuilder.sm.add_user(username, "Admin", "User", email, role, password):
            raise SystemExit(f"init: could not create the admin user {username!r}")
        print(f"init: user {username!r} created with role Admin")
PY
fi

echo "init: pools from $POOLS_FILE"
airflow pools import "$POOLS_FILE"
fi

if [[ -n "$CONNECTIONS_FILE" ]]; then
  rewritten="$(mktemp --suffix=.json)"
  trap 'rm -f "$rewritten"' EXIT
  python - "$CONNECTIONS_FILE" "$rewritten" "$SANDBOX_HOST" <<'PY'
import json
import sys

source, target, host = sys.argv[1:4]
conns = json.load(open(source))
for conn in conns.values():
    if conn.get("host"):
        conn["host"] = conn["host"].replace("//127.0.0.1:", f"//{host}:").replace("//localhost:", f"//{host}:")
json.dump(conns, open(target, "w"), indent=2)
PY
  overwrite=()
  if [[ "${CREATOR_SYNC_CONNECTIONS_OVERWRITE:-false}" == "true" ]]; then
    overwrite=(--overwrite)
  fi
  echo "init: connections from $CONNECTIONS_FILE (sandbox host -> $SANDBOX_HOST${overwrite:+, overwrite})"
  airflow connections import "${overwrite[@]}" "$rewritten"
fi

echo "init: done"
