"""The database: one engine over SQLite (WAL) or PostgreSQL, transactions, migrations, wake-ups.

Whoever commits deliveries marks the transaction (`mark_wake`); after the commit every local
dispatcher is woken at once, and on PostgreSQL a NOTIFY reaches the dispatchers of other
processes. Polling is only the fallback.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

DELIVERIES, MEDIA = "deliveries", "media"
TOPICS = (DELIVERIES, MEDIA)
# What each open transaction gave work to; weak, so a rolled-back one simply drops out.
_marked: weakref.WeakKeyDictionary[AsyncConnection, set[str]] = weakref.WeakKeyDictionary()
log = logging.getLogger("mediahooks.store")
_MIGRATION_LOCK = 74_120_001


class Database:
    def __init__(self, url: str, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.is_postgres = url.startswith("postgresql")
        self.engine: AsyncEngine = (
            _postgres_engine(url) if self.is_postgres else _sqlite_engine(url, sqlite_synchronous)
        )
        self._wakers: dict[str, list[Callable[[], None]]] = {topic: [] for topic in TOPICS}
        self._listener: Any = None

    def on_commit_wake(self, topic: str, waker: Callable[[], None]) -> None:
        """Call ``waker`` after each commit that made work of ``topic`` (any process's commit,
        on PostgreSQL, once `listen` runs)."""
        self._wakers[topic].append(waker)

    def _wake(self, topic: str) -> None:
        for waker in self._wakers[topic]:
            waker()

    async def listen(self) -> None:
        """Hear other processes' commits (PostgreSQL LISTEN); polling covers a lost connection."""
        if not self.is_postgres or self._listener is not None:
            return
        import asyncpg  # type: ignore[import-untyped]

        try:
            self._listener = await asyncpg.connect(self.postgres_dsn)
            for topic in TOPICS:
                await self._listener.add_listener(
                    _channel(topic), lambda *_, topic=topic: self._wake(topic)
                )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("LISTEN failed (%s); relying on polling", exc)
            self._listener = None

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
            topics = _marked.pop(conn, set())
            if self.is_postgres:
                for topic in topics:
                    await conn.execute(text(f"NOTIFY {_channel(topic)}"))
        for topic in topics:
            self._wake(topic)

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
        if self._listener is not None:
            await self._listener.close()
        await self.engine.dispose()


def mark_wake(conn: AsyncConnection, topic: str = DELIVERIES) -> None:
    """Wake the workers of ``topic`` once this transaction commits: it gave them work."""
    _marked.setdefault(conn, set()).add(topic)


def _channel(topic: str) -> str:
    return f"mediahooks_{topic}"


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
        pool_recycle=3600,
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
