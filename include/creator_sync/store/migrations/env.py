"""Alembic environment: migrations run on the connection creator_sync.store.migrate hands over (inside its
write transaction), or on `sqlalchemy.url` when the `alembic` CLI is used."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:  # the alembic CLI: `alembic -x url=... upgrade head` or sqlalchemy.url in an ini file
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        run(conn)
