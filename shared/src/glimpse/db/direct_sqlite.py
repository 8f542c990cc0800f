"""Core statements run straight on sqlite3, on the event loop's thread: a show's reads and a
create's inserts.

Even on the lookup engine's inline connections (inline_sqlite), SQLAlchemy's execution costs a
show some thirty times its statements: the pooled connection and its transaction events, a
greenlet hop per call, an execution context, the result and row objects; a create pays that
and a hop to aiosqlite's thread and back for each call. Here a statement is compiled once (per
number of values in its expanding IN parameters) into its SQL text, where each positional
parameter comes from, and the dialect's bind and result processors, so the rows (plain tuples)
and the values written are what SQLAlchemy's own execution would give.

A transaction runs from its begin to its end without a pause in between (nothing in it awaits
anything real), so a process needs one connection of each kind, seldom more. Reads are
read-only (`PRAGMA query_only`). A write transaction begins only if the write lock is free at
once (BEGIN IMMEDIATE without a busy wait): else the caller writes as before, on a thread that
may wait for the lock, since waiting here would stop the whole event loop. Its connection never
checkpoints the WAL on commit (a checkpoint copies and syncs megabytes); one is handed to a
thread every CHECKPOINT_EVERY commits instead. Durability is the other writers': WAL with
`synchronous=NORMAL` (a commit survives the process dying; a power loss may lose the last
ones, never the database). A driver error comes out as SQLAlchemy raises it
(DBAPIError.instance), so `Database`'s translation of an unavailable database holds.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

Row = tuple[Any, ...]
_Processor = Callable[[Any], Any]
# A statement's compiled forms by the shape of its parameters; IN lists of many lengths (a
# list page's ids) would otherwise grow it without bound.
_MAX_PREPARED: Final = 512
# Commits of direct writes between two checkpoints of the WAL: a few hundred pages, about
# SQLite's own automatic checkpoint (1000 pages).
CHECKPOINT_EVERY: Final = 200

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    # Each positional parameter: (name in the caller's parameters, index in its list or -1,
    # constant when the statement holds the value itself, bind processor or None).
    sources: tuple[tuple[str | None, int, Any, _Processor | None], ...]
    # (column index, result processor) of the columns that have one.
    readers: tuple[tuple[int, _Processor], ...]

    def values(self, parameters: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, index, constant, bind in self.sources:
            if name is None:
                value = constant
            elif index < 0:
                value = parameters[name]
            else:
                value = parameters[name][index]
            values.append(value if bind is None else bind(value))
        return tuple(values)

    def read(self, rows: list[Row]) -> list[Row]:
        if not self.readers:
            return rows
        readers = self.readers
        out = []
        for row in rows:
            values = list(row)
            for index, reader in readers:
                values[index] = reader(values[index])
            out.append(tuple(values))
        return out


def _prepare(
    dialect: Dialect, statement: sa.ClauseElement, parameters: Mapping[str, Any]
) -> _Prepared:
    compiled = statement.compile(dialect=dialect, column_keys=list(parameters))
    if not isinstance(compiled, SQLCompiler):
        msg = f"not a SQL statement: {statement!r}"
        raise TypeError(msg)
    if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
        # Python-side column defaults: SQLAlchemy's execution computes them, this does not.
        msg = "a statement with Python-side column defaults cannot be run directly"
        raise TypeError(msg)
    state = compiled.construct_expanded_state(dict(parameters))
    expanded_from = {
        piece: (name, index)
        for name, pieces in state.parameter_expansion.items()
        for index, piece in enumerate(pieces)
    }
    sources: list[tuple[str | None, int, Any, _Processor | None]] = []
    for key in state.positiontup or ():
        name, index = expanded_from.get(key, (key, -1))
        # The type of the parameter, of each value of an expanding one.
        bind = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if name in parameters:
            sources.append((name, index, None, bind))
        else:  # a value the statement holds (a literal, a bindparam's own value)
            sources.append((None, -1, state.parameters[key], bind))
    readers = []
    for index, column in enumerate(getattr(statement, "selected_columns", ())):
        reader = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if reader is not None:
            readers.append((index, reader))
    return _Prepared(state.statement, tuple(sources), tuple(readers))


def _shape(parameters: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    return tuple(
        (name, len(value) if isinstance(value, list | tuple) else -1)
        for name, value in parameters.items()
    )


class DirectRows(list[Row]):
    """A statement's rows and row count, with the accessors of SQLAlchemy's Result that the
    repositories use."""

    rowcount: int = -1

    def one_or_none(self) -> Row | None:
        if len(self) > 1:
            raise sa_exc.MultipleResultsFound(
                "Multiple rows were found when one or none was required"
            )
        return self[0] if self else None

    def scalar_one_or_none(self) -> Any:  # noqa: ANN401 -- a column's value
        row = self.one_or_none()
        return None if row is None else row[0]


Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]]


class Statements:
    """The compiled forms of the statements run on one database's direct connections."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._prepared: dict[tuple[sa.ClauseElement, tuple[tuple[str, int], ...]], _Prepared] = {}

    def prepared(self, statement: sa.ClauseElement, parameters: Mapping[str, Any]) -> _Prepared:
        key = (statement, _shape(parameters))
        prepared = self._prepared.get(key)
        if prepared is None:
            if len(self._prepared) >= _MAX_PREPARED:
                self._prepared.clear()
            prepared = self._prepared[key] = _prepare(self.dialect, statement, parameters)
        return prepared


class DirectConnection:
    """One transaction on a direct connection."""

    def __init__(self, connection: sqlite3.Connection, statements: Statements) -> None:
        self._connection = connection
        self._statements = statements

    @property
    def dialect(self) -> Dialect:
        return self._statements.dialect

    @property
    def sqlite_connection(self) -> sqlite3.Connection:
        return self._connection

    async def execute(
        self, statement: sa.ClauseElement, parameters: Parameters | None = None
    ) -> DirectRows:
        """As AsyncConnection.execute: a list of parameter sets runs the statement for each."""
        return self.run(statement, {} if parameters is None else parameters)

    def run(self, statement: sa.ClauseElement, parameters: Parameters) -> DirectRows:
        if isinstance(parameters, Mapping):
            prepared = self._statements.prepared(statement, parameters)
            values: Any = prepared.values(parameters)
            try:
                cursor = self._connection.execute(prepared.sql, values)
                rows = DirectRows(prepared.read(cursor.fetchall()))
            except sqlite3.Error as error:
                raise _translated(prepared.sql, values, error) from error
        else:
            prepared = self._statements.prepared(statement, parameters[0])
            values = [prepared.values(each) for each in parameters]
            try:
                cursor = self._connection.executemany(prepared.sql, values)
            except sqlite3.Error as error:
                raise _translated(prepared.sql, values, error) from error
            rows = DirectRows()
        rows.rowcount = cursor.rowcount
        return rows


def _translated(sql: str, values: Any, error: sqlite3.Error) -> BaseException:  # noqa: ANN401 -- the statement's values
    return sa_exc.DBAPIError.instance(sql, values, error, sqlite3.Error)


def _busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


class _Connections:
    """Idle connections of one kind to one database file."""

    def __init__(self, path: str, pragmas: Sequence[str], busy_timeout_ms: int) -> None:
        self.path = path
        # WAL as every connection sets it (a no-op once the file is in WAL, as after migrating).
        self._pragmas = (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA busy_timeout={busy_timeout_ms}",
            *pragmas,
        )
        self._busy_timeout_ms = busy_timeout_ms
        self._idle: list[sqlite3.Connection] = []

    def take(self) -> sqlite3.Connection:
        if self._idle:
            return self._idle.pop()
        # check_same_thread off: closed at shutdown from wherever the runtime closes; every
        # use is on the event loop's thread. Autocommit: BEGIN, COMMIT and ROLLBACK are ours.
        connection = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
        for pragma in self._pragmas:
            connection.execute(pragma)
        return connection

    def give_back(self, connection: sqlite3.Connection) -> None:
        self._idle.append(connection)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class DirectReads:
    """This process's read-only connections to one database file, for reads by key (never a
    query that may scan: it would hold up the whole event loop)."""

    def __init__(self, path: str, statements: Statements, *, busy_timeout_ms: int) -> None:
        self._statements = statements
        self._connections = _Connections(path, ("PRAGMA query_only=ON",), busy_timeout_ms)

    def begin(self) -> DirectConnection:
        """One read transaction (a consistent snapshot of the database), to be ended with end()
        whatever happens: a pair of calls for a caller that is itself a context manager."""
        connection = None
        try:
            connection = self._connections.take()
            connection.execute("BEGIN")
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            raise _translated("BEGIN", (), error) from error
        return DirectConnection(connection, self._statements)

    def end(self, direct: DirectConnection) -> None:
        """The transaction's end; a connection that cannot end it is closed, not reused."""
        connection = direct.sqlite_connection
        try:
            connection.execute("ROLLBACK")  # nothing was written: only the snapshot ends
        except sqlite3.Error:
            connection.close()
        else:
            self._connections.give_back(connection)

    def close(self) -> None:
        self._connections.close()


class DirectWrites:
    """This process's write connections to one database file, for short write transactions
    of Core statements alone (a create's inserts)."""

    def __init__(self, path: str, statements: Statements) -> None:
        self._statements = statements
        # No busy wait (see the module), the other writers' settings, no checkpoint on commit.
        self._connections = _Connections(
            path,
            (
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA wal_autocheckpoint=0",
            ),
            busy_timeout_ms=0,
        )
        self._commits = 0
        self._checkpoint: asyncio.Future[None] | None = None

    @contextmanager
    def transaction(self) -> Iterator[DirectConnection | None]:
        """A write transaction, committed when the block ends without an error, else rolled
        back; None, beginning nothing, while another connection holds the write lock."""
        connection = None
        try:
            connection = self._connections.take()
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            if _busy(error):
                if connection is not None:
                    self._connections.give_back(connection)
                yield None
                return
            if connection is not None:
                connection.close()
            raise _translated("BEGIN IMMEDIATE", (), error) from error
        try:
            yield DirectConnection(connection, self._statements)
            connection.execute("COMMIT")
        except BaseException as error:
            try:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            except sqlite3.Error:
                connection.close()
            else:
                self._connections.give_back(connection)
            if isinstance(error, sqlite3.Error):
                raise _translated("COMMIT", (), error) from error
            raise
        self._connections.give_back(connection)
        self._committed()

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY or self._checkpoint is not None:
            return
        self._checkpoint = asyncio.get_running_loop().run_in_executor(None, self._checkpoint_wal)
        self._checkpoint.add_done_callback(self._checkpointed)

    def _checkpoint_wal(self) -> None:
        """A passive checkpoint (it waits for no reader or writer), on its own connection."""
        connection = sqlite3.connect(self._connections.path, timeout=0, check_same_thread=False)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()

    def _checkpointed(self, future: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("WAL checkpoint after direct writes failed: %s", future.exception())

    def close(self) -> None:
        self._connections.close()
