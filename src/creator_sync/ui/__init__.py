"""The "Creator sync" view in the Airflow UI: a FastAPI app the project's plugin mounts on the API server."""

URL_PREFIX = "/creator-sync-ui"  # where the plugin mounts the view, under the Airflow base path
