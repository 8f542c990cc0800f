"""SQLite lookups on the event loop's thread: they see committed writes and refuse to write."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from glimpse.db import migrate
from glimpse.db.engine import Database
from glimpse.db.inline_sqlite import InlineConnection
from glimpse.domain.errors import DatabaseUnavailable


async def test_a_lookup_reads_committed_rows_on_the_loop_thread_and_never_writes(
    tmp_path: Path,
) -> None:
    database = Database.from_url(f"sqlite:///{tmp_path / 'lookup.sqlite'}")
    try:
        await migrate.upgrade(database)
        async with database.write() as session:
            await session.execute(sa.text("CREATE TABLE probe (value TEXT)"))
            await session.execute(sa.text("INSERT INTO probe VALUES ('written')"))
        async with database.lookup() as session:
            connection = await session.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            assert isinstance(driver, InlineConnection)
            thread = await connection.run_sync(lambda _sync: threading.get_ident())
            assert thread == threading.get_ident()
            rows = await session.execute(sa.text("SELECT value FROM probe"))
            assert rows.scalars().all() == ["written"]
        with pytest.raises(DatabaseUnavailable) as refused:
            async with database.lookup() as session:
                await session.execute(sa.text("INSERT INTO probe VALUES ('sneaked in')"))
        cause = refused.value.__cause__
        assert isinstance(cause, sa.exc.OperationalError)
        assert isinstance(cause.orig, sqlite3.OperationalError)
        assert "readonly" in str(cause.orig)
        async with database.read() as session:
            rows = await session.execute(sa.text("SELECT value FROM probe"))
            assert rows.scalars().all() == ["written"]
    finally:
        await database.dispose()
