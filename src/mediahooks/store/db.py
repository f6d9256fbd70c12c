"""The database: one engine over SQLite (WAL) or PostgreSQL, transactions, migrations, wake-ups.

Whoever commits deliveries marks the transaction (`mark_wake`); after the commit every local
dispatcher is woken at once, and on PostgreSQL a NOTIFY reaches the dispatchers of other
processes. Polling is only the fallback.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

CHANNEL = "mediahooks_deliveries"
# Transactions that made deliveries due; weak, so a rolled-back one simply drops out.
_marked: weakref.WeakSet[AsyncConnection] = weakref.WeakSet()
_MIGRATION_LOCK = 74_120_001


class Database:
    def __init__(self, url: str, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.is_postgres = url.startswith("postgresql")
        self.engine: AsyncEngine = (
            _postgres_engine(url) if self.is_postgres else _sqlite_engine(url, sqlite_synchronous)
        )
        self._wakers: list[Callable[[], None]] = []

    def on_commit_wake(self, waker: Callable[[], None]) -> None:
        self._wakers.append(waker)

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[AsyncConnection]:
        """A write transaction; commits on success, rolls back on error.

        ``durable=False`` is for bookkeeping that a crash may lose without harm (leases, attempt
        verdicts: a lost one means a delivery is sent again, never lost): on PostgreSQL its
        commit does not wait for the disk.
        """
        async with self.engine.begin() as conn:
            if not durable and self.is_postgres:
                await conn.execute(text("SET LOCAL synchronous_commit TO off"))
            yield conn
            wake = conn in _marked
            if wake and self.is_postgres:
                await conn.execute(text(f"NOTIFY {CHANNEL}"))
        if wake:
            for waker in self._wakers:
                waker()

    @property
    def postgres_dsn(self) -> str:
        return self.url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def migrate(self) -> None:
        """Apply every migration not yet applied; safe when several processes start at once."""
        async with self.engine.begin() as conn:
            if self.is_postgres:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()


def mark_wake(conn: AsyncConnection) -> None:
    """Wake the dispatchers once this transaction commits: it made deliveries due."""
    _marked.add(conn)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _postgres_engine(url: str) -> AsyncEngine:
    # asyncpg prepares every statement; a generic plan of the claim query cannot see `now` or
    # the batch size and scans far more than it needs. Plan each execution for its values.
    settings = {"plan_cache_mode": "force_custom_plan"}
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args={"server_settings": settings},
    )


def _sqlite_engine(url: str, synchronous: str) -> AsyncEngine:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # One connection per process: SQLite has a single writer anyway, and sharing one connection
    # keeps coroutines of this process from ever waiting on each other's locks.
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so `begin` below decides how to lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            # NORMAL in WAL mode: a commit survives the process crashing at any line (the OS
            # has it); only a power cut can lose the last commits. FULL waits for the disk.
            f"synchronous={synchronous}",
            "busy_timeout=30000",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so another process (a second CLI, a benchmark
        # producer) makes us wait on busy_timeout instead of failing a lock upgrade mid-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
