"""Helpers of the state store tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


def sqlite_stores(tmp_path: Path) -> Callable[[], StateStore]:
    """A maker of fresh SQLite state stores in `tmp_path`: one per hypothesis example."""
    made = iter(range(1_000_000))
    return lambda: StateStore(f"sqlite:///{tmp_path / f'state-{next(made)}.db'}")
