# creator-sync image: the official Airflow image plus exactly this project's locked package set.
#
#   docker compose build          (docker-compose.yaml builds it as ${CREATOR_SYNC_IMAGE:-creator-sync:latest})
#
# The base image's Python environment (the airflow user's virtualenv, $VIRTUAL_ENV) is synced to
# requirements.lock with uv, the same way `make install` builds .venv: packages the base image ships but the
# lock does not list are removed, so the containers run the set the tests ran. Then the repository is
# installed without dependencies (editable, like `make install`), which registers the `creator-sync`
# provider entry point (connection types in the UI) and makes `include` and `creator_sync` importable.
FROM apache/airflow:3.3.2-python3.11

# Same uv as the Makefile (UV_VERSION) and the lock.
ARG UV_VERSION=0.13.8
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

# 1. The locked third-party set (own layer: rebuilt only when the lock changes).
COPY --chown=airflow:0 requirements.lock ./
RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && uv pip sync --python "$(command -v python)" requirements.lock \
    && uv --version && airflow version

# 2. The project itself, without dependencies (everything it needs is in the lock).
COPY --chown=airflow:0 . ./
RUN uv pip install --python "$(command -v python)" --no-deps -e . \
    && python -c "from creator_sync.provider import get_provider_info; print(get_provider_info()['package-name'])"

# DAGs and plugins come from the repository copy; AIRFLOW_HOME stays /opt/airflow (logs, config).
ENV AIRFLOW__CORE__DAGS_FOLDER=${CREATOR_SYNC_HOME}/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=${CREATOR_SYNC_HOME}/plugins \
    CREATOR_SYNC_DATA_URL=file:///opt/airflow/data
