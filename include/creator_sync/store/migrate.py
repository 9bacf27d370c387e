"""Bring a state database to the newest schema with Alembic, once per process and database.

A database made before Alembic managed the schema (tables present, no ``alembic_version``) is stamped at
the baseline first, so it upgrades in place. The upgrade runs inside one write transaction (``BEGIN
IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so task processes starting together migrate once.
"""

from __future__ import annotations

import functools
import threading
import weakref
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"
PG_LOCK_KEY = 0x63735F7374617465  # "cs_state": one advisory lock id for schema upgrades
_done: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_lock = threading.Lock()


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head()


def current(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, write) -> None:
    """Upgrade the database behind ``engine`` to head. ``write()`` opens the store's write transaction."""
    with _lock:
        if engine in _done:
            return
        with engine.connect() as conn:
            at_head = current(conn) == head()
        if at_head:
            _done.add(engine)
            return
        with write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
            if current(conn) != head():
                cfg = config()
                cfg.attributes["connection"] = conn
                if current(conn) is None and sa.inspect(conn).has_table("acknowledged_events"):
                    command.stamp(cfg, BASELINE)  # made by create_all before migrations owned the schema
                command.upgrade(cfg, "head")
        _done.add(engine)
