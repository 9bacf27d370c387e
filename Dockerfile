# creator-sync image: the official Airflow image plus exactly the runtime lock and the creator_sync wheel.
#
#   docker compose build          (docker-compose.yaml builds it as ${CREATOR_SYNC_IMAGE:-creator-sync:latest})
#
# Stages:
#   build    - uv and the creator_sync wheel (`uv build --wheel`: only src/creator_sync and its resources)
#   runtime  - the Airflow image: its Python environment (the airflow user's virtualenv, $VIRTUAL_ENV) is
#              synced to requirements.lock with uv, so packages the base image ships but the lock does not
#              list are removed and the containers run the set the tests ran; then the wheel, without
#              dependencies and not editable (registers the `creator-sync` provider entry point); then
#              dags/, plugins/ and what scripts/compose-init.sh reads (scripts/, config/).
#              No dev lock, no devtools/, no tests/.
#   sandbox  - runtime + devtools/ for the compose `sandbox` profile (the vendor sandboxes; never production)
#   the last stage is the runtime image again, so a plain `docker build .` builds production.
ARG UV_VERSION=0.13.8

FROM apache/airflow:3.3.2-python3.11 AS build
ARG UV_VERSION
USER airflow
WORKDIR /tmp/build
RUN python -m pip install --no-cache-dir --target /tmp/uv "uv==${UV_VERSION}"
COPY --chown=airflow:0 pyproject.toml ./
COPY --chown=airflow:0 src/ ./src/
RUN /tmp/uv/bin/uv build --wheel --out-dir /tmp/dist .

FROM apache/airflow:3.3.2-python3.11 AS runtime
ENV CREATOR_SYNC_HOME=/opt/creator-sync \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    PYTHONDONTWRITEBYTECODE=1

USER root
RUN mkdir -p "${CREATOR_SYNC_HOME}" /opt/airflow/data /opt/airflow/auth \
    && chown -R airflow:0 "${CREATOR_SYNC_HOME}" /opt/airflow/data /opt/airflow/auth \
    && chmod -R g+rwX "${CREATOR_SYNC_HOME}" /opt/airflow/data /opt/airflow/auth
USER airflow
WORKDIR ${CREATOR_SYNC_HOME}

# 1. The locked runtime set (own layer: rebuilt only when the lock changes). uv comes from the build stage.
COPY --chown=airflow:0 requirements.lock ./
RUN --mount=type=bind,from=build,source=/tmp/uv,target=/tmp/uv \
    /tmp/uv/bin/uv pip sync --python "$(command -v python)" requirements.lock \
    && airflow version

# 2. The creator_sync wheel, without dependencies (everything it needs is in the lock).
RUN --mount=type=bind,from=build,source=/tmp/uv,target=/tmp/uv \
    --mount=type=bind,from=build,source=/tmp/dist,target=/tmp/dist \
    /tmp/uv/bin/uv pip install --python "$(command -v python)" --no-deps /tmp/dist/creator_sync-*.whl \
    && python -c "from creator_sync.provider import get_provider_info; print(get_provider_info()['package-name'])"

# 3. DAGs, the plugin entry and what the compose init reads.
COPY --chown=airflow:0 dags/ ./dags/
COPY --chown=airflow:0 plugins/ ./plugins/
COPY --chown=airflow:0 scripts/ ./scripts/
COPY --chown=airflow:0 config/ ./config/

# AIRFLOW_HOME stays /opt/airflow (logs, config).
ENV AIRFLOW__CORE__DAGS_FOLDER=${CREATOR_SYNC_HOME}/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=${CREATOR_SYNC_HOME}/plugins \
    CREATOR_SYNC_DATA_URL=file:///opt/airflow/data

FROM runtime AS sandbox
COPY --chown=airflow:0 devtools/ ./devtools/

FROM runtime AS production
