"""Typed access to SQLAlchemy Core from the table models, for the repositories' statements."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Table behind a table model (SQLModel sets `__table__` without declaring it)."""
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def rowcount(result: sa.Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (the session types every result as a Result)."""
    if not isinstance(result, sa.CursorResult):
        raise TypeError("only an UPDATE or DELETE result has a row count")
    return result.rowcount
