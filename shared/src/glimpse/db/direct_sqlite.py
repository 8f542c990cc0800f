"""Core statements read straight from sqlite3, on the event loop's thread, for a show.

Even on the lookup engine's inline connections (inline_sqlite), SQLAlchemy's execution costs a
show some thirty times its statements: the pooled connection and its transaction events, a
greenlet hop per call, an execution context, the result and row objects. Here a statement is
compiled once (per number of values in its expanding IN parameters) into its SQL text, where
each positional parameter comes from, and the dialect's bind and result processors, so the
rows (plain tuples) and the values written are what SQLAlchemy's own execution would give.

The connections are opened read-only (`PRAGMA query_only`) and used one transaction at a time,
each begun and ended without a pause in between (nothing in a transaction awaits anything
real), so a process needs one, seldom more. A driver error comes out as SQLAlchemy raises it
(DBAPIError.instance), so `Database`'s translation of an unavailable database holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
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
        bind = state.processors.get(key)
        if key in expanded_from:
            name, index = expanded_from[key]
            sources.append((name, index, None, bind))
        elif key in parameters:
            sources.append((key, -1, None, bind))
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
    """A statement's rows, with the few accessors of SQLAlchemy's Result that reads use."""

    def one_or_none(self) -> Row | None:
        if len(self) > 1:
            raise sa_exc.MultipleResultsFound(
                "Multiple rows were found when one or none was required"
            )
        return self[0] if self else None

    def scalar_one_or_none(self) -> Any:  # noqa: ANN401 -- a column's value
        row = self.one_or_none()
        return None if row is None else row[0]


class DirectConnection:
    """One read transaction of DirectReads."""

    def __init__(self, connection: sqlite3.Connection, reads: DirectReads) -> None:
        self._connection = connection
        self._reads = reads

    async def execute(
        self, statement: sa.ClauseElement, parameters: Mapping[str, Any] | None = None
    ) -> DirectRows:
        return self.rows(statement, parameters or {})

    def rows(self, statement: sa.ClauseElement, parameters: Mapping[str, Any]) -> DirectRows:
        prepared = self._reads.prepared(statement, parameters)
        values = prepared.values(parameters)
        try:
            rows = self._connection.execute(prepared.sql, values).fetchall()
        except sqlite3.Error as error:
            raise _translated(prepared.sql, values, error) from error
        return DirectRows(prepared.read(rows))


def _translated(sql: str, values: Any, error: sqlite3.Error) -> BaseException:  # noqa: ANN401 -- the statement's values
    return sa_exc.DBAPIError.instance(sql, values, error, sqlite3.Error)


class DirectReads:
    """This process's read-only sqlite3 connections to one database file, for reads by key
    (never a query that may scan: it would hold up the whole event loop)."""

    def __init__(self, path: str, dialect: Dialect, *, busy_timeout_ms: int) -> None:
        self._path = path
        self._dialect = dialect
        self._busy_timeout_ms = busy_timeout_ms
        self._idle: list[sqlite3.Connection] = []
        self._prepared: dict[tuple[sa.ClauseElement, tuple[tuple[str, int], ...]], _Prepared] = {}

    def prepared(self, statement: sa.ClauseElement, parameters: Mapping[str, Any]) -> _Prepared:
        key = (statement, _shape(parameters))
        prepared = self._prepared.get(key)
        if prepared is None:
            if len(self._prepared) >= _MAX_PREPARED:
                self._prepared.clear()
            prepared = self._prepared[key] = _prepare(self._dialect, statement, parameters)
        return prepared

    def _open(self) -> sqlite3.Connection:
        # check_same_thread off: closed at shutdown from wherever the runtime closes; every
        # use is on the event loop's thread. Autocommit: BEGIN and ROLLBACK are ours.
        connection = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout_ms / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
        connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        connection.execute("PRAGMA query_only=ON")
        return connection

    @contextmanager
    def transaction(self) -> Iterator[DirectConnection]:
        """One read transaction (a consistent snapshot of the database), on an idle connection
        or a new one; a connection that cannot end its transaction is closed, not reused."""
        connection = None
        try:
            connection = self._idle.pop() if self._idle else self._open()
            connection.execute("BEGIN")
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            raise _translated("BEGIN", (), error) from error
        try:
            yield DirectConnection(connection, self)
        finally:
            try:
                connection.execute("ROLLBACK")  # nothing was written: only the snapshot ends
            except sqlite3.Error:
                connection.close()  # broken: the next transaction opens another
            else:
                self._idle.append(connection)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
