"""The listener's durable local queue: one SQLite file (standard library ``sqlite3``).

A hook is answered 2xx only after its job and its id are on disk, so a listener killed at any
point loses nothing it acknowledged. The ids of handled hooks are remembered, so a delivery sent
twice (a retry, a replay within the tolerance) is done once. Jobs of one media asset run one at
a time and in arrival order; a job records each step it finished (download, command,
notification), so a retry after a crash or a failure redoes only what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

# Ids are kept well past the sender's retry horizon (Svix's schedule spans about a day) and
# finished jobs as long, so `sqlite3 queue.db 'select * from jobs'` shows recent history.
KEEP_SECONDS = 30 * 86400

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    ordering TEXT NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    plan TEXT,
    file TEXT,
    ran INTEGER NOT NULL DEFAULT 0,
    notified INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, next_at);
CREATE INDEX IF NOT EXISTS jobs_ordering ON jobs (ordering, id);
"""


@dataclass(frozen=True)
class Job:
    id: int
    key: str
    body: bytes
    attempts: int
    plan: dict[str, Any] | None  # the download in progress: link, size, target
    file: str | None  # the downloaded file, once it is in place
    ran: bool  # --exec has run
    notified: bool


class StateInUse(Exception):
    """Another listener holds this state folder."""


class Queue:
    """Each method runs on one worker thread, so SQLite's fsyncs never stall the event loop."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(folder / "listen.lock")
        self._db = sqlite3.connect(folder / "queue.db", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="queue")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._db:
            yield self._db

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._db.close()
        self._lock.close()

    # -- receiving

    async def add(self, key: str, ordering: str, body: bytes, now: float) -> bool:
        """Queue a hook; False when its key was seen before (nothing is queued then)."""
        return await self._run(self._add, key, ordering, body, now)

    def _add(self, key: str, ordering: str, body: bytes, now: float) -> bool:
        with self._tx() as db:
            seen = db.execute("INSERT OR IGNORE INTO seen (key, at) VALUES (?, ?)", (key, now))
            if not seen.rowcount:
                return False
            db.execute(
                "INSERT INTO jobs (key, ordering, body, received_at, next_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, ordering, body, now, now),
            )
            return True

    # -- working

    async def recover(self, now: float) -> int:
        """Put back the jobs a dead listener was working on; forget what is past keeping."""
        return await self._run(self._recover, now)

    def _recover(self, now: float) -> int:
        with self._tx() as db:
            db.execute("DELETE FROM seen WHERE at < ?", (now - KEEP_SECONDS,))
            db.execute(
                "DELETE FROM jobs WHERE state IN ('done', 'failed') AND finished_at < ?",
                (now - KEEP_SECONDS,),
            )
            return db.execute(
                "UPDATE jobs SET state = 'pending', next_at = ? WHERE state = 'running'", (now,)
            ).rowcount

    async def claim(self, now: float) -> Job | None:
        return await self._run(self._claim, now)

    def _claim(self, now: float) -> Job | None:
        with self._tx() as db:
            # The oldest due job whose asset has no earlier job still to do.
            row = db.execute(
                "SELECT id, key, body, attempts, plan, file, ran, notified FROM jobs j "
                "WHERE state = 'pending' AND next_at <= ? AND NOT EXISTS ("
                "  SELECT 1 FROM jobs e WHERE e.ordering = j.ordering AND e.id < j.id"
                "  AND e.state IN ('pending', 'running')) "
                "ORDER BY id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1 WHERE id = ?",
                (row[0],),
            )
        return Job(
            id=row[0],
            key=row[1],
            body=bytes(row[2]),
            attempts=row[3] + 1,
            plan=json.loads(row[4]) if row[4] else None,
            file=row[5],
            ran=bool(row[6]),
            notified=bool(row[7]),
        )

    async def next_due(self, now: float) -> float | None:
        """When the next job waiting for its retry time is due, if any. A job already due but
        held behind an earlier one of its asset is not counted: the end of that one wakes it."""
        return await self._run(self._next_due, now)

    def _next_due(self, now: float) -> float | None:
        row = self._db.execute(
            "SELECT min(next_at) FROM jobs WHERE state = 'pending' AND next_at > ?", (now,)
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def record(self, job_id: int, **steps: Any) -> None:
        """Save a step as soon as it is done: ``plan``, ``file``, ``ran`` or ``notified``."""
        await self._run(self._record, job_id, steps)

    def _record(self, job_id: int, steps: dict[str, Any]) -> None:
        allowed = {"plan", "file", "ran", "notified"}
        if not steps or set(steps) - allowed:
            raise ValueError(f"unknown job steps {sorted(set(steps) - allowed)}")
        values = [json.dumps(v) if k == "plan" and v is not None else v for k, v in steps.items()]
        columns = ", ".join(f"{name} = ?" for name in steps)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*values, job_id))

    async def finish(self, job_id: int, now: float, note: str) -> None:
        await self._run(self._end, job_id, "done", now, note)

    async def give_up(self, job_id: int, now: float, note: str) -> None:
        await self._run(self._end, job_id, "failed", now, note)

    def _end(self, job_id: int, state: str, now: float, note: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, note = ?, finished_at = ? WHERE id = ?",
                (state, note, now, job_id),
            )

    async def retry_at(self, job_id: int, when: float, note: str) -> None:
        await self._run(self._retry_at, job_id, when, note)

    def _retry_at(self, job_id: int, when: float, note: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'pending', next_at = ?, note = ? WHERE id = ?",
                (when, note, job_id),
            )

    async def release(self, job_id: int) -> None:
        """Hand a job back untouched (the listener is stopping in the middle of it)."""
        await self._run(self._release, job_id)

    def _release(self, job_id: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'pending', attempts = max(attempts - 1, 0) "
                "WHERE id = ? AND state = 'running'",
                (job_id,),
            )


def _lock(path: Path) -> TextIO:
    handle = open(path, "a+")  # noqa: SIM115 - held open for the life of the queue
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateInUse(f"another `mediahooks listen` is using {path.parent}") from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
