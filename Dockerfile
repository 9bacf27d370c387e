# creator-sync image: the official Airflow image with the creator_sync wheel installed on top, DAGs and plugins.
#
#   docker compose build          (docker-compose.yaml builds it as ${CREATOR_SYNC_IMAGE})
#
# Stages:
#   build    - uv and the creator_sync wheel (`uv build --wheel`: only include/creator_sync and its resources),
#              and /tmp/dist/creator-sync.txt: the wheel with its extras as one requirement with its sha256.
#              uv and the build backend (setuptools) come from requirements-build.lock, hash-checked.
#   runtime  - the Airflow image: pip installs that requirement into the image's Python environment in
#              --require-hashes mode, resolving the wheel's dependencies under requirements.lock, whose every
#              package carries its hashes: a package the image lacks is downloaded only at its locked version
#              and installed only when its archive matches a locked hash. The lock is resolved under
#              Airflow's constraints for this version (constraints/), so what the image ships keeps its version
#              and every provider of the image stays. Then dags/, plugins/ and what scripts/compose-init.sh
#              reads (scripts/, config/). No dev lock, no devtools/, no tests/.
#   sandbox  - runtime + devtools/ for the compose `sandbox` profile (the vendor sandboxes; never production)
#   the last stage is the runtime image again, so a plain `docker build .` builds production.
#
# Base image: apache/airflow:${AIRFLOW_VERSION}-python3.11, pinned to AIRFLOW_IMAGE_DIGEST when that is set
# (`make pin-image` writes it below where Docker can reach the registry; `--build-arg AIRFLOW_IMAGE_DIGEST=`
# overrides it). With it empty the tag alone names the image.
ARG AIRFLOW_VERSION=3.3.2
ARG AIRFLOW_IMAGE_DIGEST=

FROM apache/airflow:${AIRFLOW_VERSION}-python3.11${AIRFLOW_IMAGE_DIGEST:+@}${AIRFLOW_IMAGE_DIGEST} AS build
USER airflow
WORKDIR /tmp/build
COPY --chown=airflow:0 requirements-build.lock ./
RUN python -m pip install --no-cache-dir --require-hashes --target /tmp/uv -r requirements-build.lock
COPY --chown=airflow:0 pyproject.toml ./
COPY --chown=airflow:0 include/ ./include/
RUN /tmp/uv/bin/uv build --wheel --build-constraints requirements-build.lock --require-hashes --out-dir /tmp/dist . \
    && wheel="$(ls /tmp/dist/creator_sync-*.whl)" \
    && echo "creator-sync[s3,redis,postgres] @ file://${wheel} --hash=sha256:$(sha256sum "${wheel}" | cut -d ' ' -f 1)" \
        > /tmp/dist/creator-sync.txt

FROM apache/airflow:${AIRFLOW_VERSION}-python3.11${AIRFLOW_IMAGE_DIGEST:+@}${AIRFLOW_IMAGE_DIGEST} AS runtime
ARG AIRFLOW_VERSION
ENV CREATOR_SYNC_HOME=/opt/creator-sync \
    PYTHONDONTWRITEBYTECODE=1

USER root
RUN mkdir -p "${CREATOR_SYNC_HOME}" /opt/airflow/data /opt/airflow/auth \
    && chown -R airflow:0 "${CREATOR_SYNC_HOME}" /opt/airflow/data /opt/airflow/auth \
    && chmod -R g+rwX "${CREATOR_SYNC_HOME}" /opt/airflow/data /opt/airflow/auth
USER airflow
WORKDIR ${CREATOR_SYNC_HOME}

# 1. The wheel and its dependencies, by pip's resolver, on top of the image (nothing uninstalled).
#    apache-airflow==${AIRFLOW_VERSION} in the install keeps pip from moving Airflow itself. --require-hashes:
#    a dependency without a hash in the lock stops the build instead of being installed unchecked.
COPY --chown=airflow:0 requirements.lock ./
RUN --mount=type=bind,from=build,source=/tmp/dist,target=/tmp/dist \
    pip install --no-cache-dir --require-hashes "apache-airflow==${AIRFLOW_VERSION}" \
        -r /tmp/dist/creator-sync.txt -c requirements.lock \
    && airflow version \
    && python -c "from creator_sync.provider import get_provider_info; print(get_provider_info()['package-name'])"

# 2. DAGs, the plugin entry and what the compose init reads.
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
