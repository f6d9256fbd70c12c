"""SQLite behind the seam: one connection per process in WAL mode, transactions that overlap in
time sharing one commit (`_Group`), statements run inline on the event loop's thread
(`InlineSqlite`, `SqliteStatement`) and the WAL checkpointed in a thread of its own."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import ClauseElement, Connection, event, make_url
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler

from mediahooks.store.db import Database, fixed_values

log = logging.getLogger("mediahooks.store")
# How long SQLite waits for another process's write transaction before giving up.
_SQLITE_BUSY_SECONDS = 30.0
# How often the WAL is copied back into the database file, off the event loop's thread.
CHECKPOINT_SECONDS = 1.0


class SqliteDatabase(Database):
    def __init__(self, url: str, synchronous: str = "NORMAL") -> None:
        super().__init__(url, _engine(url, synchronous))
        # Group commit: whose turn it is on the one connection, and the open group.
        self._turn = asyncio.Lock()
        self._group: _Group | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._checkpoints: threading.Thread | None = None
        self._stop = threading.Event()

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[AsyncConnection]:
        """The caller's body may share its commit with others' (`_Group`), never its fate."""
        async with self._grouped() as conn:
            yield conn

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[AsyncConnection]:
        """They join the open group, as every writer needs the write lock anyway, and the
        caller goes on without waiting for its commit: this process sees the changes at once,
        and a claim's attempts start milliseconds sooner."""
        async with self._grouped(wait=False) as conn:
            yield conn

    @asynccontextmanager
    async def _grouped(self, wait: bool = True) -> AsyncIterator[AsyncConnection]:
        """Run the caller's body in the open group, or open one; wait for the group's commit
        (unless ``wait`` is False).

        Bodies take turns on the connection. The first body of a group runs bare (if it fails,
        the whole transaction is rolled back: nothing else is in it); later ones each run in a
        SAVEPOINT, so a failing body undoes only itself. The commit queues behind the bodies
        already waiting, so all of those share it, and whoever arrives meanwhile joins the next.
        """
        async with self._turn:
            group = self._group
            if group is None:
                if self._checkpoints is None:
                    self._start_checkpoints()
                conn = await self.engine.connect()
                try:
                    await conn.begin()
                except BaseException:
                    await conn.close()
                    raise
                group = self._group = _Group(conn)
            if group.members:
                # A SAVEPOINT straight on the driver: a statement of microseconds, where
                # SQLAlchemy's nested transaction costs more than many a member's own work.
                sqlite = _sqlite_of(group.conn)
                sqlite.execute("SAVEPOINT member")
                try:
                    yield group.conn
                except BaseException as exc:
                    if not sqlite.in_transaction:
                        await self._lose(group, exc)
                        raise
                    sqlite.execute("ROLLBACK TO member")
                    sqlite.execute("RELEASE member")
                    raise
                sqlite.execute("RELEASE member")
            else:
                try:
                    yield group.conn
                except BaseException:
                    self._group = None
                    await group.conn.close()  # rolls back
                    raise
            group.members += 1
            if not group.flushing:
                group.flushing = True
                self._flushes.add(asyncio.create_task(self._flush(group)))
        # Shielded: a caller cancelled while waiting must not cancel the others' commit.
        if wait:
            await asyncio.shield(group.committed)

    async def _lose(self, group: _Group, exc: BaseException) -> None:
        """A member failed so badly that SQLite rolled the whole transaction back (a full disk,
        an I/O error): the members before it lost their work too, and are told so rather than
        told it committed. The next caller opens a new group."""
        self._group = None
        await group.conn.close()
        group.committed.set_exception(exc)

    async def _flush(self, group: _Group) -> None:
        try:
            async with self._turn:
                if group.committed.done():  # lost (`_lose`): nothing left to commit
                    return
                self._group = None
                try:
                    await group.conn.commit()
                finally:
                    await group.conn.close()  # rolls back what a failed commit left
        except BaseException as exc:
            # Every member learns that its changes are not committed. (Cancelled only when the
            # loop shuts down, when nobody is left to tell.)
            group.committed.set_exception(exc)
            return
        finally:
            self._flushes.discard(asyncio.current_task())
        group.committed.set_result(None)
        self._wake_marked(group.conn)

    def _start_checkpoints(self) -> None:
        """Copy the WAL back into the database file now and then, in a thread of its own.

        SQLite would do it inside whichever commit crosses its threshold, on the event loop's
        thread: a measurable share of its time under load. The thread does it while the loop
        goes on (SQLite runs without the GIL), and PASSIVE never waits for writers. Its
        connection is opened, used and closed in that thread only.
        """
        path = make_url(self.url).database
        if path:  # in memory: no WAL
            self._checkpoints = threading.Thread(
                target=_checkpoint, args=(path, self._stop), name="sqlite-checkpoint", daemon=True
            )
            self._checkpoints.start()

    async def close(self) -> None:
        if self._flushes:
            await asyncio.wait(self._flushes)
        if self._checkpoints is not None:
            self._stop.set()
            await asyncio.to_thread(self._checkpoints.join)
        await super().close()


def _checkpoint(path: str, stop: threading.Event) -> None:
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        while not stop.wait(CHECKPOINT_SECONDS):
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.debug("checkpoint skipped: %s", exc)  # e.g. another process checkpointing
    finally:
        connection.close()


class _Group:
    """One SQLite transaction shared by the bodies of several callers, committed once.

    SQLite has one writer and every commit writes each page it changed: callers arriving
    together (producers, claims, verdicts) then pay for one commit instead of one each. Each
    caller still returns only after that commit, so what it was told is durable is.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.members = 0  # bodies that ran to the end in it
        self.flushing = False
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.committed.add_done_callback(_report_failed_commit)


def _report_failed_commit(committed: asyncio.Future[None]) -> None:
    # Members that waited have the error raised; this also tells about those that did not.
    if not committed.cancelled() and (exc := committed.exception()) is not None:
        log.warning("a SQLite commit failed: %s", exc)


class SqliteStatement:
    """A Core statement compiled once for SQLite and run straight on its driver, inside the
    caller's transaction.

    For the statements every event and every batch of verdicts runs: SQLAlchemy's execution
    path costs several times what SQLite takes to run them. The driver is an `InlineSqlite`, so
    the call is made here in the loop's thread; inside a write transaction it never waits for
    a lock.
    """

    def __init__(self, statement: ClauseElement, keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=_SQLITE, column_keys=list(keys) if keys else None)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.fixed = fixed_values(compiled)

    def rows(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[Any]:
        return _sqlite_of(conn).execute(self.sql, {**self.fixed, **params}).fetchall()

    def many(self, conn: AsyncConnection, params: Sequence[Mapping[str, Any]]) -> None:
        rows = [{**self.fixed, **p} for p in params] if self.fixed else params
        _sqlite_of(conn).executemany(self.sql, rows)


_SQLITE = sqlite_dialect(paramstyle="named")


def _sqlite_of(conn: AsyncConnection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn`` (an `InlineSqlite`, so calling it here is safe)."""
    assert conn.sync_connection is not None
    driver = conn.sync_connection.connection.driver_connection
    assert isinstance(driver, InlineSqlite)
    return driver._conn


def _engine(url: str, synchronous: str) -> AsyncEngine:
    path = make_url(url).database or ""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)

    async def connect() -> InlineSqlite:
        # No busy timeout in SQLite itself: it would block the event loop (see InlineSqlite).
        connection = InlineSqlite(
            lambda: sqlite3.connect(
                path or ":memory:", timeout=0, isolation_level=None, check_same_thread=False
            ),
            iter_chunk_size=64,
        )
        connection._thread.daemon = True  # as aiosqlite's own connect does
        await connection
        return connection

    # One connection per process: SQLite has a single writer anyway, and sharing one connection
    # keeps coroutines of this process from ever waiting on each other's locks.
    engine = create_async_engine(
        url, async_creator=connect, pool_size=1, max_overflow=0, pool_timeout=60
    )

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
            "busy_timeout=0",
            # Checkpoints run in a thread of their own (`SqliteDatabase._start_checkpoints`).
            "wal_autocheckpoint=0",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so another process (a second CLI, a benchmark
        # producer) makes us wait here instead of failing a lock upgrade mid-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class InlineSqlite(aiosqlite.Connection):
    """aiosqlite's connection with its calls made in the event loop's thread.

    A call on a local SQLite file takes microseconds, but a hop to aiosqlite's worker thread
    and back waits for the GIL each way: up to the switch interval (5 ms) while the loop is
    busy, several times per statement, all while the one connection is held. Only waiting for
    another process's write lock can take long, so that wait is done here, asleep: a busy
    statement (SQLite's own timeout is 0) is tried again until `_SQLITE_BUSY_SECONDS` pass.
    The worker thread still opens and closes the connection.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        deadline, pause = time.monotonic() + _SQLITE_BUSY_SECONDS, 0.001
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(2 * pause, 0.05)
