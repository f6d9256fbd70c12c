"""Scale-out: two `mediahooks worker` processes on one PostgreSQL database share the deliveries,
and no attempt of a delivery ever runs while another attempt of it is still going on.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from support.crashkit import (
    HookReceiver,
    MediahooksProcess,
    Producer,
    create_webhooks,
    expected_keys,
    server_env,
    wait_delivered,
)
from support.databases import fresh_postgres_database

pytestmark = pytest.mark.slow

EVENTS = 300
PATHS = ["/first", "/second"]


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    worker: str
    started_at: int  # epoch ms
    duration_ms: int

    @property
    def ended_at(self) -> int:
        return self.started_at + self.duration_ms


def overlaps(attempts: Iterable[Attempt]) -> list[tuple[Attempt, Attempt]]:
    """Pairs of attempts of one delivery whose time spans intersect.

    Sorted by start, any overlap shows up between neighbours. Both ends are whole ms rounded
    down, so an attempt that starts after another ended never looks overlapping.
    """
    by_delivery: defaultdict[int, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_delivery[attempt.delivery_id].append(attempt)
    found = []
    for spans in by_delivery.values():
        spans.sort(key=lambda a: (a.started_at, a.ended_at))
        found += [(a, b) for a, b in itertools.pairwise(spans) if b.started_at < a.ended_at]
    return found


async def read_attempts(url: str) -> list[Attempt]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT delivery_id, worker, started_at, duration_ms FROM attempts")
    finally:
        await conn.close()
    return [Attempt(**dict(row)) for row in rows]


async def wait_settled(url: str, timeout: float) -> int:
    """Wait until no delivery is pending (its last attempt is recorded); returns how many are."""
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(url)
    try:
        while True:
            pending: int = await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE status = 'pending'"
            )
            if not pending or time.monotonic() > deadline:
                return pending
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_two_workers_share_deliveries_and_never_overlap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = random.randrange(2**32)
    # 15% of the answers are 500, so deliveries come back for retries, maybe to the other worker.
    receiver = HookReceiver(fail_rate=0.15, max_delay=0.03, rng=random.Random(seed))
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(fresh_postgres_database())
        await stack.enter_async_context(receiver)
        env = server_env(
            url,
            tmp_path / "data",
            attempt_timeout=5,
            retry_schedule="0.1,0.2,0.3,0.5,1,1",
            poll_interval=0.2,
        )
        api = MediahooksProcess(
            ["serve", "--no-dispatcher", "--port", "0"], env, tmp_path / "api.log"
        )
        workers = [MediahooksProcess(["worker"], env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
        for process in (api, *workers):
            await stack.enter_async_context(process)
        await api.start()  # migrates and creates the account before the workers start
        hooks = await create_webhooks(api.url, receiver.url, PATHS)
        await asyncio.gather(*(worker.start() for worker in workers))

        producer = Producer(lambda: api.url, EVENTS, concurrency=8)
        await producer.run(timeout=20)
        assert not producer.uncertain, producer.uncertain
        missing = await wait_delivered(receiver, expected_keys(producer.committed, hooks), 30)
        assert not missing, f"{len(missing)} deliveries missing, e.g. {sorted(missing)[:5]}"
        assert await wait_settled(url, 20) == 0, "deliveries still pending after they arrived"
        attempts = await read_attempts(url)

    per_worker = Counter(a.worker for a in attempts)
    with capsys.disabled():
        print(
            f"\n  scaleout seed {seed}: {len(attempts)} attempts, {receiver.rejected} answered "
            f"500, per worker {dict(per_worker)}"
        )
    assert len(per_worker) == 2, per_worker
    # Each takes a real share; how even it is depends on how the machine schedules the two
    # processes (a busy 2-core machine has shown 80/20), so only a token share is a failure.
    assert min(per_worker.values()) >= 0.1 * len(attempts), f"unfair share: {per_worker}"
    clashes = overlaps(attempts)
    assert not clashes, f"{len(clashes)} overlapping attempts of one delivery, e.g. {clashes[:3]}"
    assert not receiver.overlapping, f"one hook in flight twice: {receiver.overlapping[:5]}"
    # Without crashes every request is one recorded attempt and each hook is accepted once.
    assert receiver.requests == len(attempts)
    assert receiver.duplicates() == 0
