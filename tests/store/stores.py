"""Helpers of the state store tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from creator_sync.store import StateStore
from devtools.services import require_postgres


@contextmanager
def dialect_store(dialect: str, tmp_path: Path, name: str, what: str) -> Iterator[StateStore]:
    """A fresh state store on `dialect`: SQLite in `tmp_path`, or a scratch PostgreSQL database `name`
    (`what` names the test's subject when PostgreSQL is missing)."""
    if dialect == "sqlite":
        yield StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        return
    from devtools.celery_stack import scratch_state_store

    require_postgres(what)
    with scratch_state_store(name) as store:
        yield store
