"""The loops' backoff, and how they tell an outage of the database from a bug: pure rules."""

from __future__ import annotations

import sqlite3

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import exc as sa

from mediahooks.loops import BACKOFF_CAP, backoff
from mediahooks.store.outage import is_outage


def test_backoff_doubles_up_to_its_cap_and_is_jittered() -> None:
    lows = [backoff(n, rand=lambda: 0.0) for n in range(1, 10)]
    highs = [backoff(n, rand=lambda: 1.0) for n in range(1, 10)]
    assert highs[0] == pytest.approx(0.2) and lows[0] == pytest.approx(0.1)
    assert highs == sorted(highs) and max(highs) == BACKOFF_CAP
    assert all(low == pytest.approx(high / 2) for low, high in zip(lows, highs, strict=True))


def test_outages_are_told_apart_from_bugs() -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    broken_sql = sqlite3.OperationalError("no such table: x")
    broken_sql.sqlite_errorcode = sqlite3.SQLITE_ERROR
    shutdown = asyncpg.exceptions.AdminShutdownError("terminating connection")
    wrapped = sa.OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "refused"))
    outages = [
        ConnectionRefusedError(111, "refused"),
        shutdown,
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle"),
        # What asyncpg raises on a connection the server ended mid-statement.
        asyncpg.exceptions._base.InternalClientError("cannot switch to state 12"),
        busy,
        wrapped,
        ExceptionGroup("two loops", [ConnectionResetError(), shutdown]),
    ]
    bugs = [
        broken_sql,
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        sa.IntegrityError("INSERT", {}, Exception("constraint")),
        TypeError("unsupported operand"),
        KeyError("x"),
        ExceptionGroup("one of each", [ConnectionResetError(), KeyError("x")]),
    ]
    assert [is_outage(e) for e in outages] == [True] * len(outages)
    assert [is_outage(e) for e in bugs] == [False] * len(bugs)
