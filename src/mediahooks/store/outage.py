"""Telling a database that is away from a bug: the first is waited out, the second is not.

An outage is anything that says the database could not be reached or dropped us: a refused or
reset connection, a server shutting down or starting up, a connection the pool handed out that
turned out closed, SQLite's file locked by another process past our patience. Everything else
(a constraint, a syntax error, a type error in our code) is a bug, and retrying it would only
hide it.
"""

from __future__ import annotations

import sqlite3

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa

# PostgreSQL's classes 08 (connection exception), 57P (operator intervention: admin shutdown,
# crash shutdown, cannot connect now) and 53 (insufficient resources: too many connections).
_PG_OUTAGE_CLASSES = ("08", "57P", "53")
_PG_OUTAGE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress"
    asyncpg.exceptions.ConnectionDoesNotExistError,
    # The driver lost its place in the protocol, as it does when the server ends a connection
    # in the middle of a statement ("cannot switch to state 12"): that connection is discarded
    # (`postgres._discard_if_lost`) and the next one works.
    asyncpg.exceptions._base.InternalClientError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means the database is unreachable for now."""
    if isinstance(exc, BaseExceptionGroup):  # tasks failing together: all for that reason
        return all(is_outage(one) for one in exc.exceptions)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _one_is_outage(current):
            return True
        # SQLAlchemy keeps the driver's error in `orig` (and usually as the cause too).
        orig = current.orig if isinstance(current, sa.DBAPIError) else None
        current = current.__cause__ or orig or current.__context__
    return False


def _one_is_outage(exc: BaseException) -> bool:
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.TimeoutError | sa.DisconnectionError):
        return True  # the pool waited for a connection in vain, or found one dead
    if isinstance(exc, OSError):  # refused, reset, unreachable, timed out
        return True
    if isinstance(exc, _PG_OUTAGE):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state.startswith(_PG_OUTAGE_CLASSES)
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR)
    # aiosqlite's answer for a connection closed under it.
    return isinstance(exc, ValueError) and str(exc) == "Connection closed"
