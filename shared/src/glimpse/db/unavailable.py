"""Which database errors mean the database is unavailable (refused, lost, hung, overloaded,
locked) rather than that a query or a row is wrong. Those become DatabaseUnavailable: the
caller may try again later, and its transaction was rolled back."""

from __future__ import annotations

from typing import Final

from sqlalchemy import exc as sa_exc

# SQLSTATE classes: connection exception, insufficient resources (too many connections),
# operator intervention (shutdown, cannot connect now, statement timeout), system error.
_UNAVAILABLE_SQLSTATE_CLASSES: Final = frozenset({"08", "53", "57", "58"})


def _sqlstate_class(error: BaseException | None) -> str | None:
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate[:2] if isinstance(sqlstate, str) else None


def is_unavailable(error: BaseException) -> bool:
    # Refused or reset connections and unreachable hosts (OSError), asyncpg's connect and
    # command timeouts (TimeoutError), no pooled connection free in time (sa TimeoutError).
    if isinstance(error, OSError | TimeoutError | sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        # OperationalError: SQLite's "database is locked" past the busy timeout, I/O errors;
        # InterfaceError: the driver's connection is closed.
        if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        return _sqlstate_class(error.orig) in _UNAVAILABLE_SQLSTATE_CLASSES
    # asyncpg's own errors come through untranslated when a connection is being opened.
    return _sqlstate_class(error) in _UNAVAILABLE_SQLSTATE_CLASSES
