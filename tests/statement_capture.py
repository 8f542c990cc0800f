"""The SELECT statements a database's reader engine runs, as (SQL, parameters), for tests that
read the plan of the statement a call made."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from glimpse.db.engine import Database


@contextlib.contextmanager
def selects_run(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs `database`'s reader engine runs inside the block, in order."""
    statements: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    engine = database.reader_engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
