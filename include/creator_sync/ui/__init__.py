"""The "Creator sync" view in the Airflow UI: a FastAPI app the project's plugin mounts on the API server."""
