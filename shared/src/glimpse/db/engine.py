"""Engines and session factories for SQLite (embedded default) and PostgreSQL.

SQLite is shared by the API, worker and scrubber processes. WAL lets readers run beside one
writer, but a deferred transaction that reads and then writes cannot be retried by SQLite's busy
handler ("database is locked"). So write sessions open with BEGIN IMMEDIATE (they queue on the
busy timeout instead of failing), while read-only sessions keep the cheap deferred BEGIN.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from glimpse.config import Settings
from glimpse.db.direct_sqlite import DirectConnection, DirectReads, DirectWrites, Statements
from glimpse.db.inline_sqlite import inline_connector
from glimpse.db.unavailable import is_unavailable
from glimpse.db.urls import async_url, is_sqlite, sqlite_file
from glimpse.domain.errors import DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_MS = 60_000

log = logging.getLogger(__name__)


def import_driver(connection: str) -> None:
    """Import the dialect and DBAPI module of `connection` without connecting: a process that
    forks workers calls it before the fork, so they share those modules."""
    async_url(connection).get_dialect().import_dbapi()


def _raise_if_unavailable(error: Exception) -> None:
    if isinstance(error, DatabaseUnavailable) or not is_unavailable(error):
        return
    # Types only: SQLAlchemy's message quotes the statement and its parameters.
    cause = getattr(error, "orig", None)
    detail = type(error).__name__ + (f" ({type(cause).__name__})" if cause is not None else "")
    log.error("database unavailable: %s", detail)
    raise DatabaseUnavailable("The database is unavailable; try again later.") from error


def _sqlite_engine(
    url: URL, *, immediate: bool, pool_size: int, inline: bool = False
) -> AsyncEngine:
    """`immediate`: the writer (BEGIN IMMEDIATE); `inline`: the lookup engine, whose
    connections run on the event loop's thread (inline_sqlite) and refuse writes; the others
    run on aiosqlite's threads."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    read_only = inline and path is not None and not immediate
    extra: dict[str, Any] = {}
    if read_only:
        extra["async_creator"] = inline_connector(str(path), SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        # Waiting for a pooled connection is cheaper than opening one (a thread, a file
        # handle and the PRAGMAs) for a burst and closing it again.
        max_overflow=0,
        pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        # Sessions always end their transaction (Database.read/write), so the pool's extra
        # ROLLBACK on check-in would be one more round trip to the driver thread for nothing.
        pool_reset_on_return=None,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        **extra,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:  # noqa: ANN401 -- DBAPI objects
        # Take transaction control from the driver so the "begin" hook below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:  # noqa: ANN401 -- DBAPI connection
        connection.exec_driver_sql(begin)

    return engine


@asynccontextmanager
async def _transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    try:
        async with sessions() as session, session.begin():
            yield session
    except Exception as exc:
        _raise_if_unavailable(exc)
        raise


@asynccontextmanager
async def _connection(
    opening: AbstractAsyncContextManager[AsyncConnection],
) -> AsyncIterator[AsyncConnection]:
    """`engine.connect()` (its transaction begins with the first statement and is rolled back on
    close) or `engine.begin()` (committed on success), a lost database answered as unavailable."""
    try:
        async with opening as connection:
            yield connection
    except Exception as exc:
        _raise_if_unavailable(exc)
        raise


class _DirectRead:
    """A read transaction on a direct connection, a lost database answered as unavailable: as
    a class rather than generators (two of them cost a show more than its BEGIN and ROLLBACK)."""

    __slots__ = ("_connection", "_reads")

    def __init__(self, reads: DirectReads) -> None:
        self._reads = reads
        self._connection: DirectConnection | None = None

    async def __aenter__(self) -> DirectConnection:
        try:
            self._connection = self._reads.begin()
        except Exception as exc:
            _raise_if_unavailable(exc)
            raise
        return self._connection

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._connection is not None:
            self._reads.end(self._connection)
            self._connection = None
        if isinstance(exc, Exception):
            _raise_if_unavailable(exc)  # else the error goes on as it is


@asynccontextmanager
async def _core_write(
    writes: DirectWrites, engine: AsyncEngine
) -> AsyncIterator[AsyncConnection | DirectConnection]:
    try:
        with writes.transaction() as direct:
            if direct is not None:
                yield direct
                return
    except Exception as exc:
        _raise_if_unavailable(exc)
        raise
    # The write lock is taken: wait for it on aiosqlite's thread, as every other write does.
    async with _connection(engine.begin()) as connection:
        yield connection


@dataclass(frozen=True, slots=True)
class Database:
    """A writer and a reader session factory (the same engine except on SQLite)."""

    url: URL
    writer_engine: AsyncEngine
    reader_engine: AsyncEngine
    writer: async_sessionmaker[AsyncSession]
    reader: async_sessionmaker[AsyncSession]
    lookup_engine: AsyncEngine
    looker: async_sessionmaker[AsyncSession]
    # SQLite in a file: reads by key and Core writes straight on sqlite3 (connect(),
    # core_write()).
    direct: DirectReads | None = None
    direct_writes: DirectWrites | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        options = settings.database
        return cls.from_url(
            options.connection,
            pool_size=options.max_pool_size,
            pool_timeout=options.pool_timeout,
            command_timeout=options.command_timeout,
        )

    @classmethod
    def from_url(
        cls,
        connection: str,
        *,
        pool_size: int = 10,
        pool_timeout: float = 30,
        command_timeout: float | None = None,
    ) -> Database:
        """`command_timeout` bounds each PostgreSQL statement and connection attempt (None:
        no bound, for migrations); `pool_timeout` the wait for a pooled connection."""
        url = async_url(connection)
        direct = direct_writes = None
        if is_sqlite(url):
            writer_engine = _sqlite_engine(url, immediate=True, pool_size=pool_size)
            reader_engine = _sqlite_engine(url, immediate=False, pool_size=pool_size)
            lookup_engine = _sqlite_engine(url, immediate=False, pool_size=pool_size, inline=True)
            path = sqlite_file(url)
            if path is not None:
                statements = Statements(writer_engine.dialect)
                direct = DirectReads(str(path), statements, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
                direct_writes = DirectWrites(str(path), statements)
        else:
            connect_args: dict[str, Any] = {}
            if command_timeout is not None:
                # asyncpg: `timeout` for opening a connection, `command_timeout` per statement
                # (the pool's pre-ping included), so a hung server fails the request in time.
                connect_args = {"timeout": command_timeout, "command_timeout": command_timeout}
            writer_engine = create_async_engine(
                url,
                pool_size=pool_size,
                pool_timeout=pool_timeout,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
            reader_engine = lookup_engine = writer_engine
        return cls(
            url=url,
            writer_engine=writer_engine,
            reader_engine=reader_engine,
            writer=async_sessionmaker(writer_engine, expire_on_commit=False),
            reader=async_sessionmaker(reader_engine, expire_on_commit=False),
            lookup_engine=lookup_engine,
            looker=async_sessionmaker(lookup_engine, expire_on_commit=False),
            direct=direct,
            direct_writes=direct_writes,
        )

    def write(self) -> AbstractAsyncContextManager[AsyncSession]:
        """One short write transaction: committed on success, rolled back on any error. A
        database that is unreachable, hung or overloaded raises DatabaseUnavailable."""
        return _transaction(self.writer)

    def read(self) -> AbstractAsyncContextManager[AsyncSession]:
        return _transaction(self.reader)

    def lookup(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A read of a few rows by key (an image and what hangs on it), run where it costs
        least: on SQLite, on the event loop's own thread, since handing each statement to
        aiosqlite's thread and back costs more than the statement. Never for a query that
        may scan (a list page): it would hold up every other request of the process."""
        return _transaction(self.looker)

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection | DirectConnection]:
        """lookup() without a session, for Core statements that only read by key (a show): a
        session's begin, commit and row loading cost more than such a read; on SQLite in a
        file, without SQLAlchemy's execution either (glimpse.db.direct_sqlite). Never writes."""
        if self.direct is not None:
            return _DirectRead(self.direct)
        return _connection(self.lookup_engine.connect())

    def read_connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """read() without a session, for Core statements that only read and may scan (a list
        page): its statements run in one transaction, rolled back on close. Never writes."""
        return _connection(self.reader_engine.connect())

    def write_connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """write() without a session, for Core statements alone (a create): committed on
        success, rolled back on any error, DatabaseUnavailable as write() raises it."""
        return _connection(self.writer_engine.begin())

    def core_write(self) -> AbstractAsyncContextManager[AsyncConnection | DirectConnection]:
        """write_connection() for Core statements that no session joins (a create's inserts): on
        SQLite in a file, straight on sqlite3 when the write lock is free at once, else as
        write_connection() (glimpse.db.direct_sqlite)."""
        if self.direct_writes is None:
            return self.write_connection()
        return _core_write(self.direct_writes, self.writer_engine)

    async def dispose(self) -> None:
        if self.direct_writes is not None:
            self.direct_writes.close()
        if self.direct is not None:
            self.direct.close()
        await self.writer_engine.dispose()
        for engine in {self.reader_engine, self.lookup_engine} - {self.writer_engine}:
            await engine.dispose()
