"""The creator_sync DAG's task bodies: fetch (full, incremental, backfill), snapshot, transform, report."""
