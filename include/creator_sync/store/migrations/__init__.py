"""Alembic migrations of the state database (run by creator_sync.store.migrate, or the `alembic` CLI)."""
