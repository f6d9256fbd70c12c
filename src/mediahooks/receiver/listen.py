"""`mediahooks listen`: an HTTP endpoint that verifies every hook, answers at once, and does the
work afterwards from a durable local queue.

    POST ─ verify ─ 401 forged or replayed
           parse ── 400 not a hook
           queue.add(webhook-id, body) ── 202 queued | 200 duplicate (already seen)
    workers: claim (one job per asset at a time) ─ download · --exec · --notify ─ one log line
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from rich.console import Console

from mediahooks.receiver import command
from mediahooks.receiver.asgi import MAX_BODY
from mediahooks.receiver.download import AssetApi, Downloader
from mediahooks.receiver.handler import Receiver, Rejected
from mediahooks.receiver.models import ThumbnailHook
from mediahooks.receiver.notify import Notifier
from mediahooks.receiver.queue import Queue
from mediahooks.receiver.verify import DEFAULT_TOLERANCE
from mediahooks.receiver.work import (
    Actions,
    Log,
    Worker,
    describe,
    ordering_key,
    progress_bars,
    save_thumbnail,
)
from mediahooks.wakeups import woken

# Without a wake-up (a hook arriving), workers look for due retries this often.
IDLE_POLL = 1.0


class CannotListen(Exception):
    """The address is taken or not ours."""


@dataclass(frozen=True)
class ListenConfig:
    secrets: Sequence[str]
    host: str = "127.0.0.1"
    port: int = 8090
    download_dir: Path = Path("downloads")
    state_dir: Path | None = None
    api_url: str | None = None
    api_secret: str | None = None
    exec_command: str | None = None
    notify: Sequence[str] = ()
    notify_on: Sequence[str] = ("completed", "errored", "deleted")
    platform: bool = False
    tolerance: float = DEFAULT_TOLERANCE
    rate_limit: int | None = None
    concurrency: int = 2

    @property
    def state(self) -> Path:
        return self.state_dir or self.download_dir / ".mediahooks"


class Listener:
    def __init__(self, config: ListenConfig, console: Console) -> None:
        self.config = config
        self.log = Log(console)
        self.bars = progress_bars(console)
        # A bad secret, notification URL or command raises ValueError: before anything starts.
        self.receiver = Receiver(
            config.secrets, tolerance=config.tolerance, platform=config.platform
        )
        self.notifier = Notifier(config.notify) if config.notify else None
        if config.exec_command is not None:
            reason = command.problem(config.exec_command)
            if reason:
                raise ValueError(reason)
        self.queue: Queue | None = None
        self.wake = asyncio.Event()
        self.url = ""

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set. Prints ``READY <url>`` once the port is open."""
        config = self.config
        self.queue = queue = Queue(config.state)
        timeout = aiohttp.ClientTimeout(total=None, connect=15, sock_read=60)
        session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        runner = web.AppRunner(self._app(), access_log=None)
        workers: list[asyncio.Task[None]] = []
        try:
            recovered = await queue.recover(time.time())
            await runner.setup()
            site = web.TCPSite(runner, config.host, config.port)
            try:
                await site.start()
            except OSError as exc:
                raise CannotListen(f"cannot listen on {config.host}:{config.port}: {exc}") from exc
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
            actions = self._actions(session)
            if self.bars is not None:
                self.bars.start()
            worker = Worker(queue, actions, self.log, self.bars)
            workers = [
                asyncio.create_task(self._work(worker), name=f"listen-worker-{i}")
                for i in range(config.concurrency)
            ]
            self._banner(recovered)
            await stop.wait()
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.bars is not None:
                self.bars.stop()
            await runner.cleanup()
            await session.close()
            queue.close()
            if self.url:
                self.log.line("stopped; unfinished work resumes at the next start")

    def _actions(self, session: aiohttp.ClientSession) -> Actions:
        config = self.config
        downloader = None
        if config.api_url and config.api_secret:
            api = AssetApi(session, config.api_url, config.api_secret)
            downloader = Downloader(session, api, rate_limit=config.rate_limit)
        return Actions(
            download_dir=config.download_dir,
            downloader=downloader,
            exec_command=config.exec_command,
            notifier=self.notifier,
            notify_on=config.notify_on,
        )

    def _banner(self, recovered: int) -> None:
        config = self.config
        self.log.line(f"mediahooks listen on {self.url}: POST hooks to any path", "bold")
        self.log.line(f"  downloads to {config.download_dir.resolve()}")
        self.log.line(f"  queue in     {config.state.resolve()}")
        if not config.api_url:
            self.log.line("  no --api-url: `completed` media is not downloaded", "yellow")
        if config.platform:
            self.log.line(
                "  --platform: X-Millicast-Signature alone is accepted; it has no timestamp, "
                "so replays of such requests cannot be refused",
                "yellow",
            )
        if recovered:
            self.log.line(f"  {recovered} unfinished job(s) from the last run taken up again")
        # The one line machines read: tests and scripts wait for it.
        print(f"READY {self.url}", flush=True)

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/{tail:.*}", self._receive)
        app.router.add_get("/{tail:.*}", self._status)
        return app

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(text="mediahooks listen: POST hooks here\n")

    async def _receive(self, request: web.Request) -> web.Response:
        assert self.queue is not None
        body = await request.read()
        try:
            delivery = self.receiver.receive(body, request.headers)
        except Rejected as exc:
            self.log.line(f"refused a request from {request.remote}: {exc.reason}", "red")
            return web.Response(status=exc.status, text=exc.reason + "\n")
        hook = delivery.hook
        if isinstance(hook, ThumbnailHook):
            # A picture is saved as it arrives: nothing further to do, so nothing to queue.
            path, new = await asyncio.to_thread(save_thumbnail, self.config.download_dir, hook)
            self.log.line(f"{describe(hook)}: " + (f"saved {path}" if new else "already saved"))
            return web.Response(status=200, text="saved\n")
        added = await self.queue.add(delivery.key, ordering_key(hook), body, time.time())
        if not added:
            self.log.line(f"{describe(hook)}: duplicate of {delivery.key}, ignored", "dim")
            return web.Response(status=200, text="duplicate: already handled\n")
        self.wake.set()
        return web.Response(status=202, text="queued\n")

    async def _work(self, worker: Worker) -> None:
        assert self.queue is not None
        while True:
            # Cleared before looking, so a hook that arrives after the look still wakes us.
            self.wake.clear()
            job = await self.queue.claim(time.time())
            if job is None:
                await self._idle()
                continue
            try:
                await worker.run(job)
            except asyncio.CancelledError:
                # Stopping mid-job: it goes back to the queue as it was and resumes next start.
                await asyncio.shield(self.queue.release(job.id))
                raise
            except Exception as exc:  # a bug must not stop the other jobs
                self.log.line(f"job {job.id} failed unexpectedly: {exc!r}", "red")
                await self.queue.retry_at(job.id, time.time() + IDLE_POLL * 30, repr(exc))
            else:
                # Another worker may be waiting for this asset's next job.
                self.wake.set()

    async def _idle(self) -> None:
        assert self.queue is not None
        now = time.time()
        due = await self.queue.next_due(now)
        wait = IDLE_POLL if due is None else min(IDLE_POLL, due - now)
        await woken(self.wake, wait)


async def serve(listener: Listener) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await listener.run(stop)


def main_console() -> Console:
    return Console(file=sys.stderr, soft_wrap=True)
