"""Waiting for a wake-up in a loop stopped by cancellation (`mediahooks.wakeups`)."""

from __future__ import annotations

import asyncio

import pytest

from mediahooks.wakeups import woken


async def test_a_wake_up_ends_the_wait_and_says_so() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(woken(event, 600))
    await asyncio.sleep(0)
    event.set()
    assert await waiting is True


async def test_no_wake_up_ends_the_wait_at_its_time() -> None:
    assert await woken(asyncio.Event(), 0.001) is False


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_loop_cancelled_as_it_is_woken_stops(turns: int) -> None:
    """The cancellation arrives while the wake-up is on its way (``turns`` of the event loop
    after it): `asyncio.wait_for` on Python 3.11 swallowed it there, and the loop went on."""
    event = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            event.clear()
            await woken(event, 600)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    event.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:  # leave nothing running behind the test
        task.cancel()
    assert done and task.cancelled(), f"the loop went on after its cancellation ({rounds} rounds)"
