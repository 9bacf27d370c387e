"""creator-sync pipeline: InsightIQ Parquet -> Insider One users (transform, validate, send once, report).

Pure Python + pandas/pyarrow; no Airflow imports (hooks are passed in). Entry points for the DAG:
`transform.transform_run`, `send.send_file`, `report.build_summary`, `replay.replay_dead_letters`.
"""
