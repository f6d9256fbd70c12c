"""The database seam: what the service asks of its database, whichever it is.

`store/dialects.connect` opens SQLite (`store/sqlite.py`: WAL, one connection, commits shared by
the transactions that overlap) or PostgreSQL (`store/postgres.py`: a pool, NOTIFY to the other
processes); above the seam nothing asks which.

Whoever commits work marks the transaction (`mark_wake`); after the commit every local worker
of that topic is woken at once, and on PostgreSQL a NOTIFY reaches the workers of other
processes within milliseconds. Polling is only the fallback.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

# A background loop as the service's supervisor runs it (`loops.LoopFactory`): it calls its
# argument, the heartbeat, after each round of work.
Loop = Callable[[Callable[[], None]], Coroutine[Any, Any, None]]
DELIVERIES, MEDIA = "deliveries", "media"
TOPICS = (DELIVERIES, MEDIA)
# What each open transaction gave work to; weak, so a rolled-back one simply drops out.
_marked: weakref.WeakKeyDictionary[AsyncConnection, set[str]] = weakref.WeakKeyDictionary()


class Database:
    """One engine, write transactions, migrations and wake-ups; a dialect fills it in."""

    is_postgres = False

    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        self._wakers: dict[str, list[Callable[[], None]]] = {topic: [] for topic in TOPICS}

    def transaction(self, *, durable: bool = True) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction; commits on success, rolls back on error. The caller continues
        only once its changes are committed (or known not to be).

        ``durable=False`` is for bookkeeping that a crash may lose without harm (leases, attempt
        verdicts: a lost one means a delivery is sent again, never lost).
        """
        raise NotImplementedError

    def statements(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for bookkeeping whose statements each stand on their own (a claim: its
        reads decide, its UPDATE re-checks every condition on the rows it takes). As with
        ``transaction(durable=False)``, a crash may lose them."""
        raise NotImplementedError

    def loops(self) -> dict[str, Loop]:
        """Background loops this database needs beside the workers (none, unless the dialect
        says so)."""
        return {}

    def on_commit_wake(self, topic: str, waker: Callable[[], None]) -> None:
        """Call ``waker`` after each commit that made work of ``topic`` (any process's commit,
        on PostgreSQL, once its listener runs)."""
        self._wakers[topic].append(waker)

    def _wake(self, topic: str) -> None:
        for waker in self._wakers[topic]:
            waker()

    def _wake_marked(self, conn: AsyncConnection) -> set[str]:
        """``conn``'s work is committed: wake this process's workers of what it marked."""
        topics = _marked.pop(conn, set())
        for topic in topics:
            self._wake(topic)
        return topics

    async def migrate(self) -> None:
        """Apply every migration not yet applied; safe when several processes start at once."""
        async with self.transaction() as conn:
            await self._lock_migrations(conn)
            await conn.run_sync(_upgrade)

    async def _lock_migrations(self, conn: AsyncConnection) -> None:
        """Keep other processes from migrating at the same time (SQLite's write lock does)."""

    async def close(self) -> None:
        await self.engine.dispose()


def mark_wake(conn: AsyncConnection, topic: str = DELIVERIES) -> None:
    """Wake the workers of ``topic`` once this transaction commits: it gave them work."""
    _marked.setdefault(conn, set()).add(topic)


def fixed_values(compiled: SQLCompiler) -> dict[str, Any]:
    """Values a compiled statement carries itself (literals), beside those each call passes."""
    return {
        compiled.bind_names[bind]: bind.value
        for bind in compiled.binds.values()
        if not bind.required
    }


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
