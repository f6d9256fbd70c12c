"""Waiting for a wake-up, or for a while, in a loop that is stopped by cancelling it.

Not with `asyncio.wait_for`: on Python 3.11 it returns as if nothing happened when it is
cancelled in the moment its awaitable completes (cpython gh-86296, fixed in 3.12). A loop woken
as it was being stopped then carried on for ever, and so did whoever waited for it to end (the
supervisor's `close`, the process's shutdown). `asyncio.timeout` lets the cancellation through.
"""

from __future__ import annotations

import asyncio


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; True if it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
