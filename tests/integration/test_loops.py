"""Supervised background loops: each survives a failed database call and carries on; a loop
broken by a bug ends the process with a non-zero exit. How outages and bugs are told apart:
`unit/test_backoff.py`."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from aiohttp import web

from mediahooks import metrics
from mediahooks.config import Settings
from mediahooks.delivery.dispatcher import Dispatcher
from mediahooks.loops import Supervisor
from mediahooks.store import assets, claims, timelines, verdicts
from mediahooks.store.db import DELIVERIES
from mediahooks.store.dialects import connect
from mediahooks.store.postgres import PostgresDatabase
from support.crashkit import server_env
from support.receiver import Receiver
from support.server import ApiFactory
from support.waiting import eventually

# -- each loop fails once at its database call and recovers


def _value(metric: Any, loop: str) -> float:
    return float(metric.labels(loop)._value.get())


def fail_once(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[float]:
    """Make ``module.name`` fail once as a dropped connection would; returns when it did."""
    real = getattr(module, name)
    failed_at: list[float] = []

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if not failed_at:
            failed_at.append(time.time())
            raise ConnectionResetError(104, "injected: connection reset by peer")
        return await real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)
    return failed_at


async def recovered(loop: str, failed_at: list[float], failures_before: float) -> None:
    async def beat_since() -> bool:
        return (
            bool(failed_at)
            and _value(metrics.LOOP_FAILURES, loop) > failures_before
            and _value(metrics.LOOP_LAST_SUCCESS, loop) > failed_at[0]
        )

    await eventually(beat_since, timeout=20)


LOOPS: dict[str, tuple[Any, str]] = {
    "claims": (claims, "claim"),
    "verdicts": (verdicts, "record"),
    "leases": (claims, "renew_leases"),
    "statistics": (claims, "keep_statistics"),
    "media": (assets, "claim"),
    "sweeper": (timelines, "idle"),
}


# The connections of this test's database whose last statement was a LISTEN.
FROM = (
    "FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' "
    "AND pid <> pg_backend_pid()"
)
LISTENERS = f"SELECT count(*) {FROM}"


@pytest.mark.parametrize("loop", [*LOOPS, "listener"])
async def test_each_loop_recovers_from_a_failed_database_call(
    loop: str,
    api_factory: ApiFactory,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = await api_factory()
    postgres = api.service.db.is_postgres
    if loop in ("statistics", "listener") and not postgres:
        pytest.skip(f"the {loop} loop runs on PostgreSQL only")
    before = _value(metrics.LOOP_FAILURES, loop)
    if loop == "listener":
        # A real loss: the server ends the connection that LISTENs, as a restart would.
        assert isinstance(api.service.db, PostgresDatabase)
        admin = await asyncpg.connect(api.service.db.postgres_dsn)
        try:

            async def listening() -> bool:
                return bool(await admin.fetchval(LISTENERS))

            await eventually(listening)
            failed_at = [time.time()]
            assert await admin.fetchval(f"SELECT bool_and(pg_terminate_backend(pid)) {FROM}")
        finally:
            await admin.close()
    else:
        failed_at = fail_once(monkeypatch, *LOOPS[loop])

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(3)  # attempts in flight long enough for their leases to be renewed
        return web.Response(text="ok")

    await api.webhook(receiver.on("/slow", slow) if loop == "leases" else receiver.url + "/h")
    await api.ok("POST", "/api/webhooks/test/Media")
    await receiver.wait_for(1, timeout=20)
    await recovered(loop, failed_at, before)
    # And the service still does its work: a second event is delivered.
    await api.ok("POST", "/api/webhooks/test/Media")
    await receiver.wait_for(2, timeout=20)


# -- a bug ends the process


BROKEN_SWEEPER = """
import sys
from mediahooks import cli
from mediahooks.media import sweeper

async def broken(*_args, **_kwargs):
    raise ZeroDivisionError("a bug in the sweeper")

sweeper.sweep = broken
sys.argv = ["mediahooks", *sys.argv[1:]]
cli.main()
"""


async def broken_process(script: str, command: list[str], database_url: str, data: Path) -> str:
    """Run ``mediahooks <command>`` with a bug put in by ``script``; its log, once it exited
    with status 1 (a process that lives on fails the test by its time limit)."""
    env = server_env(database_url, data, attempt_timeout=2, retry_schedule="1", poll_interval=0.2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        *command,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    log = err.decode(errors="replace")
    assert proc.returncode == 1, log[-2000:]
    return log


@pytest.mark.slow
@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
async def test_a_loop_broken_by_a_bug_ends_the_process_non_zero(
    command: list[str], database_url: str, tmp_path: Path
) -> None:
    log = await broken_process(BROKEN_SWEEPER, command, database_url, tmp_path / "data")
    assert "sweeper loop broke; stopping the process" in log
    assert "ZeroDivisionError: a bug in the sweeper" in log


BROKEN_SRT_DOOR = """
import sys
from mediahooks import cli
from mediahooks.ingest import srt

def broken(self, _srt):
    raise ZeroDivisionError("a bug in the SRT door's thread")

srt.SrtServer._obey = broken
sys.argv = ["mediahooks", *sys.argv[1:]]
cli.main()
"""


@pytest.mark.slow
async def test_the_srt_doors_thread_broken_by_a_bug_ends_the_process_non_zero(
    database_url: str, tmp_path: Path
) -> None:
    """The SRT door reads callers in a thread of its own; a bug there ends the process like a
    broken loop, instead of leaving an API up whose SRT port no longer reads anyone."""
    log = await broken_process(BROKEN_SRT_DOOR, ["serve", "--port", "0"], database_url, tmp_path)
    assert "srt loop broke; stopping the process" in log
    assert "ZeroDivisionError: a bug in the SRT door's thread" in log


# -- stopping


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_the_dispatcher_stops_when_woken_as_it_is_stopped(
    turns: int, database_url: str
) -> None:
    """The claim loop asleep, a wake-up (an answer, a commit) arrives as the service stops it:
    the cancellation must not be lost, or stopping waits for a loop that never ends (the
    delivery benchmark hung so, between two runs)."""
    db = connect(Settings(database_url=database_url).sqlalchemy_url)
    await db.migrate()
    # No poll in the test's lifetime: the claim loop sleeps until woken.
    dispatcher = Dispatcher(db, Settings(database_url=database_url, poll_interval=600))
    loops = Supervisor(lambda name, exc: pytest.fail(f"the {name} loop broke: {exc!r}"))
    try:
        claimed = _value(metrics.LOOP_LAST_SUCCESS, "claims")
        for name, loop in dispatcher.loops().items():
            loops.start(name, loop)

        async def asleep() -> bool:
            # Its heartbeat comes right before it goes to sleep.
            return _value(metrics.LOOP_LAST_SUCCESS, "claims") > claimed

        await eventually(asleep)
        db._wake(DELIVERIES)  # as a commit that queued deliveries does
        for _ in range(turns):  # the wake-up still on its way to the sleeping loop
            await asyncio.sleep(0)
        closing = asyncio.create_task(loops.close())
        # Bounded only so that a regression fails instead of hanging the suite.
        done, _ = await asyncio.wait({closing}, timeout=30)
        assert done, "the claim loop carried on after it was stopped"
    finally:
        await loops.close()  # a cancellation lost once is not lost twice
        dispatcher.close()
        await db.close()
