"""The database: one engine over SQLite (WAL) or PostgreSQL, transactions, migrations, wake-ups.

Whoever commits deliveries marks the transaction (`mark_wake`); after the commit every local
dispatcher is woken at once, and on PostgreSQL a NOTIFY reaches the dispatchers of other
processes within milliseconds (`Database._announce`). Polling is only the fallback.

On SQLite, transactions that overlap in time share one commit (see `_Group`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import ClauseElement, Connection, event, make_url, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler

from mediahooks.store.outage import is_outage

DELIVERIES, MEDIA = "deliveries", "media"
TOPICS = (DELIVERIES, MEDIA)
# What each open transaction gave work to; weak, so a rolled-back one simply drops out.
_marked: weakref.WeakKeyDictionary[AsyncConnection, set[str]] = weakref.WeakKeyDictionary()
log = logging.getLogger("mediahooks.store")
_MIGRATION_LOCK = 74_120_001
# How long SQLite waits for another process's write transaction before giving up.
_SQLITE_BUSY_SECONDS = 30.0
# How often the WAL is copied back into the database file, off the event loop's thread.
CHECKPOINT_SECONDS = 1.0
# PostgreSQL: commits within this long share one NOTIFY to the other processes.
ANNOUNCE_SECONDS = 0.002


class Database:
    def __init__(self, url: str, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.is_postgres = url.startswith("postgresql")
        self.engine: AsyncEngine = (
            _postgres_engine(url) if self.is_postgres else _sqlite_engine(url, sqlite_synchronous)
        )
        # PostgreSQL: connections whose commits do not wait for the disk, for `durable=False`
        # (set per connection, it costs no statement per transaction).
        self._bookkeeping: AsyncEngine | None = (
            _postgres_engine(url, pool_size=4, synchronous_commit="off")
            if self.is_postgres
            else None
        )
        self._wakers: dict[str, list[Callable[[], None]]] = {topic: [] for topic in TOPICS}
        # PostgreSQL: a connection of our own that sends the NOTIFYs (`listen` has another).
        self._peer: Any = None
        self._peer_lock = asyncio.Lock()
        self._unannounced: set[str] = set()
        self._announcer: asyncio.Task[None] | None = None
        # SQLite group commit: whose turn it is on the one connection, and the open group.
        self._turn = asyncio.Lock()
        self._group: _Group | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._checkpoints: threading.Thread | None = None
        self._stop = threading.Event()

    def on_commit_wake(self, topic: str, waker: Callable[[], None]) -> None:
        """Call ``waker`` after each commit that made work of ``topic`` (any process's commit,
        on PostgreSQL, once `listen` runs)."""
        self._wakers[topic].append(waker)

    def _wake(self, topic: str) -> None:
        for waker in self._wakers[topic]:
            waker()

    async def listen(self, beat: Callable[[], None]) -> None:
        """PostgreSQL: hear other processes' commits (LISTEN) for as long as the process runs.

        On a connection of its own, which nothing else uses: a lost connection (the server
        restarted) raises, as an outage, and the supervisor connects again. Polling finds the
        work meanwhile, and after (re)connecting every local worker is woken once for what was
        committed while nobody listened.
        """
        import asyncpg  # type: ignore[import-untyped]

        lost = asyncio.Event()
        listener = await asyncpg.connect(self.postgres_dsn)
        try:
            listener.add_termination_listener(lambda _connection: lost.set())
            for topic in TOPICS:
                await listener.add_listener(_channel(topic), self._heard(topic))
            for topic in TOPICS:
                self._wake(topic)
            beat()
            while not listener.is_closed():
                # The termination listener is the quick way to learn of it; the check, the sure
                # one.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), timeout=5)
            raise ConnectionResetError("the connection that LISTENs to PostgreSQL was closed")
        finally:
            listener.terminate()

    def _heard(self, topic: str) -> Callable[..., None]:
        def on_notification(_listener: Any, sender: int, *_: Any) -> None:
            # Our own NOTIFYs come back too; this process's workers were woken at the commit.
            if self._peer is None or sender != self._peer.get_server_pid():
                self._wake(topic)

        return on_notification

    async def _connect_peer(self) -> Any:
        """The connection that sends NOTIFYs, (re)opened if need be; call with `_peer_lock` held
        (asyncpg runs one operation at a time on a connection)."""
        import asyncpg

        if self._peer is None or self._peer.is_closed():
            self._peer = await asyncpg.connect(self.postgres_dsn)
        return self._peer

    def _announce(self, topics: set[str]) -> None:
        """PostgreSQL: NOTIFY the other processes of committed work, soon.

        Not from inside each transaction: a NOTIFY per commit cost the server about as much as
        the commit's own statements, and woke every listening process once per event. Whatever
        commits within `ANNOUNCE_SECONDS` shares one NOTIFY, sent after those commits, so a
        process that hears it finds their work. Should this process die first, the others'
        polling finds it.
        """
        self._unannounced |= topics
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.create_task(self._announce_soon())

    async def _announce_soon(self) -> None:
        while self._unannounced:
            await asyncio.sleep(ANNOUNCE_SECONDS)
            topics, self._unannounced = self._unannounced, set()
            try:
                async with self._peer_lock:
                    peer = await self._connect_peer()
                    await peer.execute("; ".join(f"NOTIFY {_channel(t)}" for t in sorted(topics)))
            except Exception as exc:
                log.warning("NOTIFY failed (%s); other processes will poll for the work", exc)

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[AsyncConnection]:
        """A write transaction; commits on success, rolls back on error.

        Either way the caller continues only once its changes are committed (or known not to
        be): on SQLite its body may share the commit with others' (`_Group`), never its fate.

        ``durable=False`` is for bookkeeping that a crash may lose without harm (leases, attempt
        verdicts: a lost one means a delivery is sent again, never lost): on PostgreSQL its
        commit does not wait for the disk.
        """
        if not self.is_postgres:
            async with self._grouped() as conn:
                yield conn
            return
        engine = self.engine if durable or self._bookkeeping is None else self._bookkeeping
        # The driver holds the transaction (see `_postgres_engine`): SQLAlchemy's statements and
        # `PgStatement`s run in it alike.
        async with engine.connect() as conn:
            try:
                driver = _asyncpg_of(conn)
                held = driver.transaction()
                await held.start()
                try:
                    yield conn
                except BaseException:
                    # A statement cancelled mid-way closes the connection (the server then rolls
                    # back by itself): the caller's error is what matters, not a failed ROLLBACK.
                    if not driver.is_closed():
                        try:
                            await held.rollback()
                        except Exception:
                            await conn.invalidate()  # never back to the pool mid-transaction
                    raise
                await held.commit()
            except BaseException as exc:
                await _discard_if_lost(conn, exc)
                raise
            self._committed(conn)

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[AsyncConnection]:
        """A connection for bookkeeping whose statements each stand on their own (a claim: its
        reads decide, its UPDATE re-checks every condition on the rows it takes).

        On PostgreSQL they run in autocommit, without BEGIN and COMMIT round trips: under READ
        COMMITTED a transaction around them would guard nothing more, each statement sees the
        commits before it all the same. On SQLite they join the open (grouped) transaction, as
        there every writer needs the write lock anyway, and the caller goes on without waiting
        for its commit: this process sees the changes at once, and a claim's attempts start
        milliseconds sooner. As with ``transaction(durable=False)``, a crash or a failed commit
        may lose them: a lost lease means a delivery is sent again, never that it is lost.
        """
        if self._bookkeeping is None:
            async with self._grouped(wait=False) as conn:
                yield conn
            return
        async with self._bookkeeping.connect() as conn:
            try:
                yield conn
            except BaseException as exc:
                await _discard_if_lost(conn, exc)
                raise
            self._committed(conn)

    def _committed(self, conn: AsyncConnection) -> None:
        """PostgreSQL: ``conn``'s work is committed; wake this process now, the others soon."""
        topics = _marked.pop(conn, set())
        if topics:
            for topic in topics:
                self._wake(topic)
            self._announce(topics)

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
                except BaseException:
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

    async def _flush(self, group: _Group) -> None:
        topics: set[str] = set()
        try:
            async with self._turn:
                self._group = None
                try:
                    await group.conn.commit()
                    topics = _marked.pop(group.conn, set())
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
        for topic in topics:
            self._wake(topic)

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

    @property
    def postgres_dsn(self) -> str:
        return self.url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def migrate(self) -> None:
        """Apply every migration not yet applied; safe when several processes start at once."""
        async with self.transaction() as conn:
            if self.is_postgres:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        if self._flushes:
            await asyncio.wait(self._flushes)
        if self._checkpoints is not None:
            self._stop.set()
            await asyncio.to_thread(self._checkpoints.join)
        if self._announcer is not None:
            await self._announcer
        if self._peer is not None:
            await self._peer.close()
        await self.engine.dispose()
        if self._bookkeeping is not None:
            await self._bookkeeping.dispose()


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
        self.fixed = _fixed_values(compiled)

    def rows(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[Any]:
        return _sqlite_of(conn).execute(self.sql, {**self.fixed, **params}).fetchall()

    def many(self, conn: AsyncConnection, params: Sequence[Mapping[str, Any]]) -> None:
        rows = [{**self.fixed, **p} for p in params] if self.fixed else params
        _sqlite_of(conn).executemany(self.sql, rows)


_SQLITE = sqlite_dialect(paramstyle="named")


def _fixed_values(compiled: SQLCompiler) -> dict[str, Any]:
    """Values a statement carries itself (literals), beside those each call passes."""
    return {
        compiled.bind_names[bind]: bind.value
        for bind in compiled.binds.values()
        if not bind.required
    }


def _sqlite_of(conn: AsyncConnection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn`` (an `InlineSqlite`, so calling it here is safe)."""
    assert conn.sync_connection is not None
    driver = conn.sync_connection.connection.driver_connection
    assert isinstance(driver, InlineSqlite)
    return driver._conn


class PgStatement:
    """A Core statement compiled once for asyncpg and run straight on its driver, inside the
    caller's transaction (or on its own, on a `Database.statements` connection).

    For the statements every event runs: SQLAlchemy's execution path costs more than the round
    trip itself (about 200 µs of CPU against 90 per statement, measured here). asyncpg keeps
    the statement prepared per connection. Lists are passed as arrays (no expanding IN).
    """

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_POSTGRES)
        assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
        self.sql = compiled.string
        self.names = list(compiled.positiontup)
        self.fixed = _fixed_values(compiled)

    async def rows(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[Any]:
        values = {**self.fixed, **params}
        return list(await _asyncpg_of(conn).fetch(self.sql, *[values[n] for n in self.names]))


_POSTGRES = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


def _asyncpg_of(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``."""
    assert conn.sync_connection is not None
    return conn.sync_connection.connection.driver_connection


def mark_wake(conn: AsyncConnection, topic: str = DELIVERIES) -> None:
    """Wake the workers of ``topic`` once this transaction commits: it gave them work."""
    _marked.setdefault(conn, set()).add(topic)


def _channel(topic: str) -> str:
    return f"mediahooks_{topic}"


async def _discard_if_lost(conn: AsyncConnection, exc: BaseException) -> None:
    """After an outage a connection must not go back to the pool: the driver may have lost its
    place in the protocol (asyncpg then refuses every later statement on it)."""
    if is_outage(exc):
        try:
            await conn.invalidate()
        except Exception as invalidating:
            log.debug("discarding a lost connection: %s", invalidating)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _postgres_engine(url: str, pool_size: int = 10, synchronous_commit: str = "on") -> AsyncEngine:
    # asyncpg prepares every statement and PostgreSQL plans it once for any values where that
    # costs no more (a verdict's UPDATE, run for each attempt): planning every execution cost
    # the server a tenth of its time. The claim's walk has the same good plan either way, once
    # the table has statistics (`deliveries.keep_statistics`).
    settings = {"synchronous_commit": synchronous_commit}
    # AUTOCOMMIT: SQLAlchemy leaves transactions alone. `Database.transaction` opens them on
    # the driver, so statements run straight on it (`PgStatement`) share them; a connection
    # used only to read pays no BEGIN and ROLLBACK (under READ COMMITTED each statement sees
    # the latest commits either way).
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=3600,
        connect_args={"server_settings": settings},
    )


def _sqlite_engine(url: str, synchronous: str) -> AsyncEngine:
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
            # Checkpoints run in a thread of their own (`Database._start_checkpoints`).
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
