"""SQLite read connections that run on the event loop's thread, shaped as aiosqlite's.

aiosqlite runs every call (cursor, execute, fetch, commit) in a helper thread and wakes the
event loop for each result: a show request paid some sixteen thread hand-offs, the largest
part of its CPU time on a busy machine. A read on a WAL database never waits for the writer,
and a lookup by key is small, so running it directly costs less than handing it off.

Only the lookup engine (Database.lookup) uses this, with `PRAGMA query_only` so a write
slipped into a lookup fails at once instead of blocking the event loop on the busy timeout.
Writers keep aiosqlite (BEGIN IMMEDIATE may queue behind another process's write for
seconds), and so do reads that may scan (a list page).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self

Row = tuple[Any, ...]


class InlineCursor:
    """The part of aiosqlite.Cursor that SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Row | None:
        row: Row | None = self._cursor.fetchone()
        return row

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Row]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:  # noqa: ANN401 -- DBAPI description tuples
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _ImmediateQueue:
    """Stands in for aiosqlite's work queue, which SQLAlchemy's isolation_level setter feeds:
    the function runs now and its future is resolved."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # noqa: BLE001 -- handed to the awaiting caller, as aiosqlite does
            future.set_exception(exc)


class InlineConnection:
    """The part of aiosqlite.Connection that SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _ImmediateQueue(connection)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 -- sqlite3's signature
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """aiosqlite's forced close (SQLAlchemy's terminate): nothing runs elsewhere to stop."""
        self._conn.close()
        self._connection = None


def inline_connector(path: str, timeout: float) -> Callable[[], Any]:
    """An `async_creator` for create_async_engine: an inline connection to `path` (the
    engine's connect hook makes it read-only)."""

    async def connect() -> InlineConnection:
        # check_same_thread off: the pool may close a connection from the garbage collector's
        # thread at exit; every use is on the event loop's thread.
        connection = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        return InlineConnection(connection)

    return connect
