"""Crash and scale-out machinery shared by bench/crash.py and the subprocess tests.

- `MediahooksProcess`: one `mediahooks serve|worker` subprocess: start, wait for READY, SIGKILL.
- `HookReceiver`: a real HTTP endpoint that counts accepted hooks per (path, webhook-id).
- `Producer`: commits test events through the API; only a 200 answer counts as committed.
- `run_crash`: produce while killing the server at random moments, then check that every
  committed event reached every webhook at least once.

The guarantee under test is at-least-once: an event whose POST was answered 200 is in the
outbox, so it must reach every webhook however often the server dies. Duplicates are allowed
(a hook answered just before a kill is sent again) and are only counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from mediahooks.delivery.dispatcher import LEASE_MS

API_SECRET = "crash-api-secret"
TEST_EVENT_PATH = "/api/webhooks/test/Media"

Say = Callable[[str], None]
Key = tuple[str, str]  # (receiver path, webhook-id header)


def _quiet(_: str) -> None:
    return None


# --- the mediahooks subprocess -----------------------------------------------------------------


def mediahooks_command() -> str:
    """The console script of the running interpreter's environment."""
    beside = Path(sys.executable).with_name("mediahooks")
    if beside.exists():
        return str(beside)
    found = shutil.which("mediahooks")
    if found is None:
        raise RuntimeError("the `mediahooks` command is not installed in this environment")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(
    database_url: str,
    data_dir: Path,
    *,
    attempt_timeout: float,
    retry_schedule: str,
    poll_interval: float,
    **more: str,
) -> dict[str, str]:
    """The MEDIAHOOKS_* variables of a test server; every other MEDIAHOOKS_* is dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAHOOKS_")}
    env.update(
        MEDIAHOOKS_DATABASE_URL=database_url,
        MEDIAHOOKS_DATA_DIR=str(data_dir),
        MEDIAHOOKS_API_SECRET=API_SECRET,
        MEDIAHOOKS_ALLOW_PRIVATE_TARGETS="true",
        MEDIAHOOKS_RETRY_SCHEDULE=retry_schedule,
        MEDIAHOOKS_ATTEMPT_TIMEOUT=f"{attempt_timeout:g}",
        MEDIAHOOKS_POLL_INTERVAL=f"{poll_interval:g}",
        MEDIAHOOKS_RTMP_PORT="0",
        MEDIAHOOKS_SRT_PORT="0",
    )
    env.update({f"MEDIAHOOKS_{k.upper()}": v for k, v in more.items()})
    return env


class MediahooksProcess:
    """One `mediahooks` subprocess that can be killed and started again any number of times.

    stderr goes to a log file: the dispatcher logs every attempt, and an unread pipe would
    fill up and stall the server.
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        self.ready = ""  # what followed READY: the URL for `serve`, "worker" for `worker`
        self._proc: asyncio.subprocess.Process | None = None
        self._stdout_reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self.ready

    async def start(self, timeout: float = 30) -> str:
        """Start the process and return once it printed its READY line."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # The child keeps its own copy of the descriptor.
            self._proc = await asyncio.create_subprocess_exec(
                mediahooks_command(),
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=self.env,
                # Its own process group: a Ctrl-C on the bench must not reach the server.
                start_new_session=True,
            )
        try:
            self.ready = await asyncio.wait_for(self._read_ready(), timeout)
        except BaseException:
            await self.kill()
            raise
        assert self._proc.stdout is not None
        self._stdout_reader = asyncio.create_task(_discard_lines(self._proc.stdout))
        return self.ready

    async def _read_ready(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            text = line.decode(errors="replace").strip()
            if text.startswith("READY"):
                return text.removeprefix("READY").strip()
        await self._proc.wait()
        raise RuntimeError(
            f"mediahooks {' '.join(self.args)} exited with {self._proc.returncode} before READY:\n"
            + self.log_tail()
        )

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up or finish anything, as in a crash.

        The whole process group goes, so helper processes the service spawned (a process pool)
        die with it instead of outliving the run.
        """
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        await self._proc.wait()
        await self._stop_reading()

    async def stop(self, timeout: float = 10) -> None:
        """Ctrl-C (the dispatcher records what is in flight), then SIGKILL after ``timeout``."""
        if self._proc is None:
            return
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), timeout)
        await self.kill()

    async def _stop_reading(self) -> None:
        if self._stdout_reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._stdout_reader, 5)
            self._stdout_reader = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def __aenter__(self) -> MediahooksProcess:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _discard_lines(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


# --- the receiving end -------------------------------------------------------------------------


class HookReceiver:
    """A real HTTP endpoint on every path: answers 200 after a short random delay, or 500 for a
    ``fail_rate`` share of the requests so that retries happen.

    The delay keeps requests in flight long enough for a kill to land in the middle of one.
    A hook counts as accepted once this side decided to answer 200, even when the sender died
    before reading the answer: from the receiver's point of view it was delivered.
    """

    def __init__(
        self, *, fail_rate: float = 0.0, max_delay: float = 0.0, rng: random.Random | None = None
    ) -> None:
        self.fail_rate = fail_rate
        self.max_delay = max_delay
        self.rng = rng or random.Random()
        self.url = ""
        self.accepted: Counter[Key] = Counter()
        self.requests = 0
        self.rejected = 0
        self.inflight = 0
        # Keys seen twice in flight at once: the same hook sent concurrently to one endpoint.
        self.overlapping: list[Key] = []
        self._inflight_keys: Counter[Key] = Counter()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> HookReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        key = (request.path, request.headers.get("webhook-id", ""))
        self.requests += 1
        self.inflight += 1
        self._inflight_keys[key] += 1
        if self._inflight_keys[key] > 1:
            self.overlapping.append(key)
        try:
            await request.read()
            if self.max_delay:
                await asyncio.sleep(self.rng.uniform(0, self.max_delay))
            if self.rng.random() < self.fail_rate:
                self.rejected += 1
                return web.Response(status=500, text="try again")
            self.accepted[key] += 1
            return web.Response(text="ok")
        finally:
            self.inflight -= 1
            self._inflight_keys[key] -= 1
            if not self._inflight_keys[key]:
                del self._inflight_keys[key]

    async def wait_busy(self, timeout: float, give_up: Callable[[], bool] = lambda: False) -> bool:
        """Wait until a request is in flight (True), or ``timeout`` passed or ``give_up()``."""
        deadline = time.monotonic() + timeout
        while self.inflight == 0:
            if time.monotonic() > deadline or give_up():
                return False
            await asyncio.sleep(0.002)
        return True

    def duplicates(self) -> int:
        """Accepted hooks beyond the first of each (path, webhook-id)."""
        return sum(n - 1 for n in self.accepted.values() if n > 1)


# --- the producing end -------------------------------------------------------------------------


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_SECRET}"}


async def create_webhooks(base_url: str, receiver_url: str, paths: Iterable[str]) -> dict[int, str]:
    """One media webhook per receiver path; returns webhook id -> path."""
    hooks: dict[int, str] = {}
    async with aiohttp.ClientSession(headers=_auth()) as session:
        for path in paths:
            body = {"url": receiver_url + path, "isFeedHooks": False, "isMediaHooks": True}
            async with session.post(base_url + "/api/webhooks", json=body) as resp:
                answer = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"creating a webhook answered {resp.status}: {answer}")
                hooks[int(answer["data"]["id"])] = path
    return hooks


class Producer:
    """Commits test events through the API with ``concurrency`` concurrent POSTs.

    A POST without a 200 answer may or may not have committed its event, so it is only
    counted as uncertain and a new event is posted in its place; `committed` holds the
    events the server confirmed (messageId -> webhookIds).
    """

    def __init__(self, base_url: Callable[[], str], events: int, concurrency: int) -> None:
        self.base_url = base_url
        self.events = events
        self.concurrency = concurrency
        self.committed: dict[str, tuple[int, ...]] = {}
        self.uncertain: Counter[str] = Counter()  # why a POST got no 200 answer
        self._posting = 0

    @property
    def done(self) -> bool:
        return len(self.committed) >= self.events

    async def run(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(
            connector=connector, headers=_auth(), timeout=aiohttp.ClientTimeout(total=15)
        ) as session:
            await asyncio.gather(
                *(self._post_until_done(session, deadline) for _ in range(self.concurrency))
            )
        if not self.done:
            raise TimeoutError(
                f"only {len(self.committed)} of {self.events} events committed in {timeout:g} s"
            )

    async def _post_until_done(self, session: aiohttp.ClientSession, deadline: float) -> None:
        # Reserving a slot before posting keeps the total at exactly `events` committed.
        while len(self.committed) + self._posting < self.events and time.monotonic() < deadline:
            self._posting += 1
            try:
                committed = await self._post_one(session)
            finally:
                self._posting -= 1
            if not committed:
                await asyncio.sleep(0.05)  # the server is likely down: do not spin

    async def _post_one(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.post(self.base_url() + TEST_EVENT_PATH) as resp:
                answer: dict[str, Any] = await resp.json(content_type=None)
                if resp.status != 200 or answer.get("status") != "success":
                    self.uncertain[f"HTTP {resp.status}"] += 1
                    return False
                # The answer is `true`; what was committed is in its headers.
                msg_id = resp.headers["X-Mediahooks-Message-Id"]
                ids = resp.headers["X-Mediahooks-Webhook-Ids"]
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.uncertain[type(exc).__name__] += 1
            return False
        self.committed[msg_id] = tuple(int(i) for i in ids.split(",") if i)
        return True


def expected_keys(committed: Mapping[str, Sequence[int]], hooks: Mapping[int, str]) -> set[Key]:
    """Every (path, messageId) a committed event must reach: one per webhook of the run.

    An event queued for a webhook the run did not create gets a path nobody serves, so it
    shows up as missing instead of passing unnoticed.
    """
    keys = {(path, msg_id) for msg_id in committed for path in hooks.values()}
    keys |= {
        (f"(unknown webhook {hook})", msg_id)
        for msg_id, ids in committed.items()
        for hook in ids
        if hook not in hooks
    }
    return keys


async def wait_delivered(receiver: HookReceiver, expected: set[Key], timeout: float) -> set[Key]:
    """Wait until every expected key was accepted; returns the keys still missing."""
    deadline = time.monotonic() + timeout
    missing = set(expected)
    while True:
        missing = {key for key in missing if not receiver.accepted[key]}
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(0.1)


# --- the crash run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CrashConfig:
    database_url: str
    data_dir: Path
    events: int = 5000
    kills: int = 5
    webhooks: int = 3
    concurrency: int = 8
    attempt_timeout: float = 5
    retry_schedule: str = "0.5,1,1,2,2,5"
    poll_interval: float = 0.5
    fail_rate: float = 0.02
    max_delay: float = 0.02
    produce_timeout: float = 600
    drain_timeout: float = 120
    seed: int = 0

    @property
    def lease_seconds(self) -> float:
        # The dispatcher's lease: a killed process's deliveries wait this long to be retaken.
        return LEASE_MS / 1000


@dataclass(frozen=True)
class Kill:
    phase: str  # "production" | "drain"
    in_flight: bool  # a hook was being delivered at that moment
    committed: int  # events committed when it happened
    restart_seconds: float


@dataclass
class CrashReport:
    committed: int
    uncertain: Counter[str]
    expected: int
    delivered: int
    missing: list[Key]
    duplicates: int
    rejected: int
    uncommitted_arrivals: int  # events whose POST failed but that were committed after all
    kills: list[Kill] = field(default_factory=list)
    seconds: float = 0.0

    def kills_in(self, phase: str) -> list[Kill]:
        return [k for k in self.kills if k.phase == phase]

    def lines(self) -> list[str]:
        in_flight = sum(k.in_flight for k in self.kills)
        uncertain = ", ".join(f"{n} {why}" for why, n in self.uncertain.most_common()) or "none"
        return [
            f"events committed          {self.committed}",
            f"POSTs without an answer   {sum(self.uncertain.values())} ({uncertain})",
            f"deliveries expected       {self.expected}",
            f"delivered at least once   {self.delivered}",
            f"missing                   {len(self.missing)}",
            f"duplicates                {self.duplicates}",
            f"answered 500 (retried)    {self.rejected}",
            f"uncommitted but delivered {self.uncommitted_arrivals} events",
            f"kills                     {len(self.kills)} "
            f"({len(self.kills_in('production'))} during production, "
            f"{len(self.kills_in('drain'))} during the drain, {in_flight} with a hook in flight)",
            f"total time                {self.seconds:.1f} s",
        ]


class CrashRun:
    """One crash run: a server, a receiver, a producer and a killer."""

    def __init__(self, config: CrashConfig, say: Say = _quiet) -> None:
        self.config = config
        self.say = say
        self.rng = random.Random(config.seed)
        self.kills: list[Kill] = []
        self.started = time.monotonic()
        env = server_env(
            config.database_url,
            config.data_dir,
            attempt_timeout=config.attempt_timeout,
            retry_schedule=config.retry_schedule,
            poll_interval=config.poll_interval,
        )
        # A fixed port: producers keep posting to one address across restarts, as clients do.
        args = ["serve", "--host", "127.0.0.1", "--port", str(free_port())]
        self.server = MediahooksProcess(args, env, config.data_dir / "server.log")
        self.receiver = HookReceiver(
            fail_rate=config.fail_rate, max_delay=config.max_delay, rng=self.rng
        )
        self.producer = Producer(lambda: self.server.url, config.events, config.concurrency)

    async def run(self) -> CrashReport:
        async with self.receiver, self.server:
            await self.server.start()
            paths = [f"/hook-{i + 1}" for i in range(self.config.webhooks)]
            hooks = await create_webhooks(self.server.url, self.receiver.url, paths)
            self.say(
                f"server {self.server.url}, {len(hooks)} webhooks, receiver {self.receiver.url}"
            )
            drain_kills = await self._produce_while_killing()
            for _ in range(drain_kills):
                await asyncio.sleep(self.rng.uniform(0.05, 0.5))
                await self._kill_and_restart(busy_timeout=self.config.lease_seconds + 5)
            expected = expected_keys(self.producer.committed, hooks)
            self.say(
                f"{self.elapsed():6.1f} s  waiting for {len(expected)} deliveries "
                f"(at most {self.config.drain_timeout:g} s)"
            )
            missing = await self._drain(expected)
            return self._report(expected, missing)

    async def _drain(self, expected: set[Key]) -> set[Key]:
        """`wait_delivered`, telling the progress every few seconds."""
        deadline = time.monotonic() + self.config.drain_timeout
        missing = expected
        while missing and time.monotonic() < deadline:
            step = min(5.0, deadline - time.monotonic())
            missing = await wait_delivered(self.receiver, missing, step)
            self.say(f"{self.elapsed():6.1f} s  {len(missing)} deliveries still missing")
        return missing

    async def _produce_while_killing(self) -> int:
        """Produce, killing at random points of the production; returns the kills left over."""
        planned = math.ceil(self.config.kills / 2)
        points = sorted(self.rng.uniform(0.1, 0.9) * self.config.events for _ in range(planned))
        production = asyncio.create_task(self.producer.run(self.config.produce_timeout))
        try:
            for point in points:
                while len(self.producer.committed) < point and not production.done():
                    await asyncio.sleep(0.005)
                if production.done():
                    break
                await self._kill_and_restart(busy_timeout=1)
            await production
        finally:
            production.cancel()
        self.say(
            f"{self.elapsed():6.1f} s  production done: "
            f"{len(self.producer.committed)} events committed"
        )
        return self.config.kills - len(self.kills)

    async def _kill_and_restart(self, busy_timeout: float) -> None:
        # Production kills must not slip past the end of production waiting for a hook.
        in_production = not self.producer.done
        in_flight = await self.receiver.wait_busy(
            busy_timeout, give_up=lambda: in_production and self.producer.done
        )
        phase = "drain" if self.producer.done else "production"
        killed_at, committed = self.elapsed(), len(self.producer.committed)
        await self.server.kill()
        await self.server.start()
        kill = Kill(phase, in_flight, committed, self.elapsed() - killed_at)
        self.kills.append(kill)
        self.say(
            f"{killed_at:6.1f} s  kill {len(self.kills)} during {phase}, "
            f"{kill.committed} committed{', hook in flight' if in_flight else ''}; "
            f"READY again in {kill.restart_seconds:.1f} s"
        )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _report(self, expected: set[Key], missing: set[Key]) -> CrashReport:
        committed = self.producer.committed
        arrived_ids = {msg_id for _, msg_id in self.receiver.accepted}
        return CrashReport(
            committed=len(committed),
            uncertain=self.producer.uncertain,
            expected=len(expected),
            delivered=len(expected) - len(missing),
            missing=sorted(missing),
            duplicates=self.receiver.duplicates(),
            rejected=self.receiver.rejected,
            uncommitted_arrivals=len(arrived_ids - committed.keys()),
            kills=self.kills,
            seconds=self.elapsed(),
        )


async def run_crash(config: CrashConfig, say: Say = _quiet) -> CrashReport:
    return await CrashRun(config, say).run()
