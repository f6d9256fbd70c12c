"""The process's background loops, supervised: an outage is waited out, a bug ends the process.

Every long-running loop (the dispatcher, the media worker, the sweeper, the PostgreSQL listener)
runs under one `Supervisor`. When a loop fails because the database is away (`store.outage`), it
is logged once with the cause, started again after a capped, jittered backoff, and logged again
when it has done a round of work. A loop that fails for any other reason is a bug: the process
stops with a non-zero exit instead of living on as a zombie that accepts work it never does.

Each loop calls its `beat` after every round of work that reached the database; the time of the
last beat is a metric per loop, and a loop waiting out an outage makes the process not ready.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from mediahooks import metrics
from mediahooks.store.outage import is_outage

log = logging.getLogger("mediahooks.loops")

Beat = Callable[[], None]
LoopFactory = Callable[[Beat], Coroutine[Any, Any, None]]

BACKOFF_FIRST = 0.2
BACKOFF_CAP = 5.0


def backoff(failures: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` failures in a row (1, 2, ...): doubling from
    `BACKOFF_FIRST` up to `BACKOFF_CAP`, each drawn from its upper half so that processes
    restarted together do not knock on the database together (pure)."""
    ceiling: float = min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** max(0, failures - 1))
    return ceiling / 2 + rand() * ceiling / 2


@dataclass
class _Loop:
    name: str
    task: asyncio.Task[None] | None = None
    failing_since: float | None = None  # monotonic time of the first failure of a run of them
    cause: str = ""


class Supervisor:
    """Starts loops and keeps them going; ``on_bug`` is called once if one of them breaks."""

    def __init__(self, on_bug: Callable[[str, BaseException], None]) -> None:
        self._on_bug = on_bug
        self._loops: dict[str, _Loop] = {}

    def start(self, name: str, factory: LoopFactory) -> None:
        loop = self._loops[name] = _Loop(name)
        loop.task = asyncio.create_task(self._keep(loop, factory), name=name)

    def waiting(self) -> dict[str, str]:
        """The loops not doing their work now (stopped, or waiting out an outage), with why."""
        out = {}
        for loop in self._loops.values():
            if loop.task is None or loop.task.done():
                out[loop.name] = "stopped"
            elif loop.failing_since is not None:
                out[loop.name] = loop.cause
        return out

    async def close(self) -> None:
        """Stop the loops one by one in the order they started: a loop may finish its part
        (attempts in flight) before the next (which records their answers) is stopped."""
        for loop in self._loops.values():
            if loop.task is not None:
                loop.task.cancel()
                try:
                    await loop.task
                except asyncio.CancelledError:
                    # The loop's own end, unless close() itself was cancelled meanwhile: that
                    # one goes to close()'s caller.
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise

    async def _keep(self, loop: _Loop, factory: LoopFactory) -> None:
        failures = 0

        def beat() -> None:
            nonlocal failures
            metrics.LOOP_LAST_SUCCESS.labels(loop.name).set(time.time())
            if loop.failing_since is not None:
                log.warning(
                    "%s loop resumed after %.1f s",
                    loop.name,
                    time.monotonic() - loop.failing_since,
                )
                loop.failing_since, failures = None, 0

        while True:
            try:
                await factory(beat)
                raise RuntimeError(f"the {loop.name} loop returned; it must run until stopped")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_outage(exc):
                    log.critical("%s loop broke; stopping the process", loop.name, exc_info=exc)
                    self._on_bug(loop.name, exc)
                    return
                failures += 1
                metrics.LOOP_FAILURES.labels(loop.name).inc()
                if loop.failing_since is None:
                    # Once per outage: a database away for an hour must not fill the log.
                    loop.failing_since, loop.cause = time.monotonic(), _cause(exc)
                    log.warning(
                        "%s loop: the database is unreachable (%s); retrying until it answers",
                        loop.name,
                        loop.cause,
                    )
            await asyncio.sleep(backoff(failures))


def _cause(exc: BaseException) -> str:
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = str(root).strip().splitlines()[0] if str(root).strip() else ""
    return f"{type(root).__name__}: {text}" if text else type(root).__name__
