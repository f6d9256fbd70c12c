"""What every system's run in the delivery benchmark shares: the receiver process and its
endpoints, the CPU window of a run, paced sending, and the sample hook (`delivery.py`)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from cpu import Pids, Window
from delivery_report import Figures, Record
from mediahooks import events
from mediahooks.clock import now_ms

BENCH_DIR = Path(__file__).resolve().parent
CONTROL = "/_bench"  # the receiver's control paths
MAX_IN_FLIGHT = 256  # paced sends waiting at once, as an API's connection limit would allow


# --- the receiver -----------------------------------------------------------------------------


class Receiver:
    """The receiver process and a client for its control paths."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    @classmethod
    @asynccontextmanager
    async def running(cls) -> AsyncIterator[Receiver]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(BENCH_DIR / "receiver.py"), stdout=asyncio.subprocess.PIPE
        )
        receiver: Receiver | None = None
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode().split()
            if len(line) != 2 or line[0] != "READY":
                raise RuntimeError(f"the receiver did not start: {line}")
            receiver = cls(proc, f"http://127.0.0.1:{line[1]}")
            yield receiver
        finally:
            if receiver is not None:
                await receiver._session.close()
            await stop(proc)

    async def endpoint(self) -> Endpoint:
        """A fresh path prefix for one run; what earlier runs left behind is dropped."""
        async with self._session.post(self.url + CONTROL + "/reset") as resp:
            resp.raise_for_status()
        return Endpoint(self, f"/run-{uuid.uuid4().hex[:8]}")

    async def get(self, path: str, prefix: str) -> Any:
        url = self.url + CONTROL + path
        async with self._session.get(url, params={"prefix": prefix + "/"}) as resp:
            resp.raise_for_status()
            return await resp.json()


@dataclass
class Endpoint:
    """One run's share of the receiver: only requests to paths under ``prefix`` count.

    A late request of an earlier run (a warm-up, a straggler after a drain timeout) lands under
    another prefix and so can never make this run look complete.
    """

    receiver: Receiver
    prefix: str
    offset: int = 0  # deliveries already counted before the measured window (the warm-up)

    def url(self, path: str) -> str:
        return f"{self.receiver.url}{self.prefix}{path}"

    async def count(self) -> int:
        return int((await self.receiver.get("/count", self.prefix))["distinct"])

    async def records(self) -> list[Record]:
        rows = (await self.receiver.get("/records", self.prefix))["records"]
        return [(p, i, float(t)) for p, i, t in rows]

    async def wait_for(self, expected: int, timeout: float) -> bool:
        """Poll until ``expected`` more distinct deliveries arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.count() - self.offset >= expected:
                return True
            await asyncio.sleep(0.05)
        return await self.count() - self.offset >= expected

    async def start_window(self) -> None:
        """What arrived so far (a completed warm-up) is not part of the measurement."""
        self.offset = await self.count()


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def cpu_window(system: Pids, store: Pids | None, receiver: Receiver) -> Window:
    """A CPU window over a burst (not started yet)."""
    groups: dict[str, Pids] = {
        "system": system,
        "receiver": lambda: {receiver.proc.pid},
    }
    if store is not None:
        groups["store"] = store
    return Window(groups)


def with_cpu(figures: Figures, used: dict[str, float]) -> Figures:
    if figures.arrived:
        figures.cpu_us = {part: s / figures.arrived * 1e6 for part, s in used.items()}
    return figures


def sample_hook(index: int) -> events.Hook:
    """A `completed` media hook for a new asset, as a recording's lifecycle emits it."""
    now = now_ms()
    data = events.MediaData(
        media_asset_id=events.new_asset_id(),
        token_id=index,
        stream_name="bench-stream",
        stream_id="bench/bench-stream",
        start_time=now,
        type="recording",
        metadata={},
    )
    return events.media_hook("completed", data, now)


async def paced(count: int, rate: float, send: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start ``send`` ``count`` times at ``rate``/s, each on time even if earlier ones are slow.

    That is how requests reach an API: one slow transaction does not hold back the next. Like a
    server's connection limit, at most MAX_IN_FLIGHT sends wait at once; beyond that the pace
    slips, which the achieved rate then shows.
    """
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    start = loop.time()
    tasks: list[asyncio.Task[None]] = []

    async def one() -> None:
        try:
            await send()
        finally:
            slots.release()

    for i in range(count):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
