"""The database goes away and comes back while events and clip requests arrive: nothing the API
acknowledged is lost, delivery and cutting resume by themselves, and the API answers 503 (never
500) meanwhile. A private PostgreSQL cluster is restarted twice (fast, then immediate), for
`serve` alone and for `serve --no-dispatcher` + `worker`; a SQLite file is held locked by
another process for 20 s.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mediahooks.clock import iso, now_ms
from mediahooks.media import publisher, synthetic
from support.crashkit import (
    API_SECRET,
    HookReceiver,
    MediahooksProcess,
    Producer,
    create_webhooks,
    expected_keys,
    server_env,
    wait_delivered,
)
from support.pgcluster import PrivatePostgres

pytestmark = pytest.mark.slow

PATHS = ("/a", "/b")
AUTH = {"Authorization": f"Bearer {API_SECRET}"}
TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass
class Load:
    """Test events and clip requests sent until told to stop; what was acknowledged."""

    url: str
    stream: str
    timeline_start: int
    committed: dict[str, tuple[int, ...]] = field(default_factory=dict)
    uncertain: Counter[str] = field(default_factory=Counter)
    clips: list[str] = field(default_factory=list)
    answers: Counter[int] = field(default_factory=Counter)
    retry_after: set[str] = field(default_factory=set)
    refused: Counter[str] = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def events(self) -> None:
        while not self.stop.is_set():
            producer = Producer(lambda: self.url, events=5, concurrency=2)
            await producer.run(timeout=120)
            self.committed.update(producer.committed)
            self.uncertain.update(producer.uncertain)
            await asyncio.sleep(0.05)

    async def clip_requests(self) -> None:
        body = {
            "streamName": self.stream,
            "startTime": iso(self.timeline_start + 500),
            "stopTime": iso(self.timeline_start + 11_000),
        }
        async with aiohttp.ClientSession(headers=AUTH, timeout=TIMEOUT) as session:
            while not self.stop.is_set():
                try:
                    async with session.post(f"{self.url}/api/v3/media/assets", json=body) as resp:
                        self.answers[resp.status] += 1
                        answer = await resp.json(content_type=None)
                        if resp.status == 503:
                            self.retry_after.add(resp.headers.get("Retry-After", ""))
                        if resp.status == 200:
                            self.clips += [asset["id"] for asset in answer["data"]]
                        elif resp.status != 503:
                            self.refused[answer["data"]["message"]] += 1
                except (aiohttp.ClientError, TimeoutError):
                    self.answers[0] += 1
                await asyncio.sleep(0.3)


async def publish_timeline(url: str, stream: str) -> int:
    """A 12 s stream that ended a second ago; returns its wall-clock start."""
    token = await publish_token(url, stream)
    start = now_ms() - 13_000
    segments = synthetic.iter_segments(12, "ts", width=320, height=180, fps=30)
    await publisher.publish(
        f"{url}/ingest/{stream}", token, segments, realtime=False, start_ms=start
    )
    return start


async def resumed_after(url: str, receiver: HookReceiver, since: float) -> float:
    """Seconds from ``since`` until an event posted now reaches the receiver."""
    producer = Producer(lambda: url, events=1, concurrency=1)
    await producer.run(timeout=60)
    (msg_id,) = producer.committed
    missing = await wait_delivered(receiver, {(PATHS[0], msg_id)}, timeout=60)
    assert not missing, "delivery did not resume"
    return time.monotonic() - since


async def publish_token(url: str, stream: str) -> str:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        body = {"label": "cam", "streams": [{"streamName": stream}], "clip": True}
        async with session.post(f"{url}/api/publish_token", json=body) as resp:
            token: str = (await resp.json())["data"]["token"]
            return token


async def ingest_status(url: str, token: str) -> int:
    """What the ingest answers a publisher's playlist upload."""
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg0.ts\n"
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.put(f"{url}/ingest/other/index.m3u8", data=playlist, headers=headers) as resp,
    ):
        return resp.status


async def readiness(url: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(f"{url}/readyz") as resp,
    ):
        return resp.status, await resp.json()


async def clip_statuses(url: str, ids: list[str], timeout: float = 90) -> Counter[str]:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(headers=AUTH) as session:
        while True:
            statuses: Counter[str] = Counter()
            for asset_id in ids:
                async with session.get(f"{url}/api/v3/media/assets/{asset_id}") as resp:
                    statuses[(await resp.json())["data"]["status"]] += 1
            if set(statuses) == {"complete"} or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.5)


async def survive(
    url: str,
    processes: list[MediahooksProcess],
    outage: Callable[[], Awaitable[list[float]]],
    receiver: HookReceiver,
    capsys: pytest.CaptureFixture[str],
    label: str,
    refusals: bool = True,
) -> None:
    hooks = await create_webhooks(url, receiver.url, PATHS)
    load = Load(url, "cam", await publish_timeline(url, "cam"))
    work = [asyncio.create_task(load.events()), asyncio.create_task(load.clip_requests())]
    try:
        back_at = await outage()
        resumed = [await resumed_after(url, receiver, t) for t in back_at[-1:]]
    finally:
        load.stop.set()
        await asyncio.gather(*work)
    missing = await wait_delivered(receiver, expected_keys(load.committed, hooks), timeout=90)
    statuses = await clip_statuses(url, load.clips)
    ready, problems = await readiness(url)
    assert ready == 200, problems
    with capsys.disabled():
        print(
            f"\n  outage[{label}]: {len(load.committed)} events acknowledged, "
            f"{len(load.committed) - len({m for _, m in missing})} delivered to every webhook, "
            f"{receiver.duplicates()} duplicates, resumed {resumed[0]:.1f} s after the database "
            f"was back; clips {len(load.clips)} acknowledged {dict(statuses)}; answers "
            f"{dict(load.answers)}, uncertain events {dict(load.uncertain)}"
        )
    assert not missing, f"{len(missing)} deliveries missing, e.g. {sorted(missing)[:5]}"
    assert not load.refused, load.refused
    assert load.clips and set(statuses) == {"complete"}, statuses
    assert load.answers[500] == 0 and "HTTP 500" not in load.uncertain
    if refusals:  # a locked SQLite file makes requests wait instead
        assert load.answers[503] or load.uncertain["HTTP 503"], "the outage was never seen"
    assert load.retry_after <= {"5"}
    for process in processes:
        assert process._proc is not None and process._proc.returncode is None, process.log_tail()


@pytest.mark.parametrize("topology", ["serve", "serve+worker"])
async def test_delivery_and_cutting_survive_postgresql_restarts(
    topology: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = PrivatePostgres()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(cluster.destroy)
        await cluster.start()
        env = server_env(
            cluster.url,
            tmp_path / "data",
            attempt_timeout=5,
            retry_schedule="0.2,0.5,1,1,1,2,2,2",
            poll_interval=0.2,
        )
        alone = topology == "serve"
        api = MediahooksProcess(
            ["serve", "--port", "0", *([] if alone else ["--no-dispatcher"])],
            env,
            tmp_path / "api.log",
        )
        processes = [api] + ([] if alone else [MediahooksProcess(["worker"], env, tmp_path / "w")])
        for process in processes:
            await stack.enter_async_context(process)
            await process.start()
        receiver = await stack.enter_async_context(HookReceiver())

        token = await publish_token(api.url, "other")

        async def restart_twice() -> list[float]:
            back_at = []
            for mode in ("fast", "immediate"):
                await asyncio.sleep(2)
                await cluster.stop(mode)
                await asyncio.sleep(1)
                assert (await readiness(api.url))[0] == 503
                assert await ingest_status(api.url, token) == 503  # publishers retry
                await asyncio.sleep(2)
                await cluster.start()
                back_at.append(time.monotonic())
            return back_at

        await survive(api.url, processes, restart_twice, receiver, capsys, topology)


async def test_delivery_and_cutting_survive_a_sqlite_database_locked_for_20_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data" / "mediahooks.db"
    env = server_env(
        f"sqlite:///{path}",
        tmp_path / "data",
        attempt_timeout=5,
        retry_schedule="0.2,0.5,1,1,1,2,2,2",
        poll_interval=0.2,
    )
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(
            MediahooksProcess(["serve", "--port", "0"], env, tmp_path / "api.log")
        )
        await api.start()
        receiver = await stack.enter_async_context(HookReceiver())

        async def lock_for_20_seconds() -> list[float]:
            await asyncio.sleep(2)
            holder = await asyncio.create_subprocess_exec(
                sys.executable, "-c", LOCK_HOLDER, str(path), stdout=asyncio.subprocess.PIPE
            )
            assert holder.stdout is not None
            assert await holder.stdout.readline() == b"locked\n"
            await holder.wait()
            return [time.monotonic()]

        await survive(
            api.url, [api], lock_for_20_seconds, receiver, capsys, "sqlite-lock", refusals=False
        )


LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(20)
db.rollback()
"""
