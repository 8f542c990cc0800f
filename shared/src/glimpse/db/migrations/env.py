"""Alembic environment: runs migrations over the connection glimpse-manage hands in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from glimpse.db import metadef_tables, tables  # noqa: F401 -- registers the tables on SQLModel.metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
