#!/usr/bin/env bash
# Entry point of the Airflow containers of docker-compose.yaml. Compose mounts the secrets of .env as files
# under /run/secrets (docker-compose.yaml, `secrets:`); this script makes them the settings of the process it
# starts, so they live in that process's environment and never in the container's (`docker inspect` shows
# no secret). URLs in the compose environment carry a user and no password; the password is added here.
#
#   secrets-env.sh COMMAND...          then the official image's /entrypoint with COMMAND (service commands)
#   secrets-env.sh --exec COMMAND...   then COMMAND itself (healthchecks run through `docker exec`)
set -euo pipefail

secret() {  # the content of /run/secrets/$1, refused when missing or empty
  local file="/run/secrets/$1"
  if [[ ! -s "$file" ]]; then
    echo "secrets-env: $file is missing or empty: set $2 in .env (see .env.example)" >&2
    exit 1
  fi
  tr -d '\r\n' <"$file"
}

with_password() {  # with_password VAR SECRET ENV_NAME: scheme://user@host... -> scheme://user:<secret>@host...
  local url="${!1:-}" password
  if [[ "$url" != *://*@* ]]; then
    echo "secrets-env: $1 must be a URL with a user and no password (scheme://user@host/...)" >&2
    exit 1
  fi
  password="$(secret "$2" "$3")"
  export "$1=${url/@/:$password@}"
}

AIRFLOW__CORE__FERNET_KEY="$(secret airflow_fernet_key AIRFLOW__CORE__FERNET_KEY)"
AIRFLOW__API_AUTH__JWT_SECRET="$(secret airflow_jwt_secret AIRFLOW__API_AUTH__JWT_SECRET)"
AIRFLOW__API__SECRET_KEY="$(secret airflow_api_secret_key AIRFLOW__API__SECRET_KEY)"
export AIRFLOW__CORE__FERNET_KEY AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__API__SECRET_KEY
with_password AIRFLOW__DATABASE__SQL_ALCHEMY_CONN postgres_password POSTGRES_PASSWORD
with_password AIRFLOW__CELERY__RESULT_BACKEND postgres_password POSTGRES_PASSWORD
with_password AIRFLOW__CELERY__BROKER_URL redis_password REDIS_PASSWORD
with_password CREATOR_SYNC_RATE_LIMIT_BACKEND redis_password REDIS_PASSWORD
with_password CREATOR_SYNC_STATE_URL creator_sync_state_password CREATOR_SYNC_STATE_PASSWORD
if [[ -e /run/secrets/airflow_admin_password ]]; then  # airflow-init only
  AIRFLOW_ADMIN_PASSWORD="$(secret airflow_admin_password AIRFLOW_ADMIN_PASSWORD)"
  export AIRFLOW_ADMIN_PASSWORD
fi
# Optional secrets (empty in .env = not set): connections and the Insider callback token, named after the
# variable they become (airflow_conn_creator_sync_s3 -> AIRFLOW_CONN_CREATOR_SYNC_S3).
for file in /run/secrets/airflow_conn_* /run/secrets/creator_sync_insider_callback_token; do
  [[ -s "$file" ]] || continue
  name="$(basename "$file" | tr '[:lower:]' '[:upper:]')"
  export "$name=$(tr -d '\r\n' <"$file")"
done

if [[ "${1:-}" == "--exec" ]]; then
  shift
  exec "$@"
fi
exec /entrypoint "$@"
