"""Alembic environment: runs on the engine docsbot hands over (see config.db.upgrade)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

config = context.config


def run() -> None:
    engine = config.attributes.get("connection_engine")
    if not isinstance(engine, Engine):
        # `alembic -x url=...` from the command line, for people who prefer the raw tool.
        engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])
    with engine.begin() as connection:
        context.configure(connection=connection, render_as_batch=True)
        context.run_migrations()


run()
