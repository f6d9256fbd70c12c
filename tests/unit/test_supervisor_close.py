"""Stopping the supervised loops (`loops.Supervisor.close`)."""

from __future__ import annotations

import asyncio

import pytest

from mediahooks.loops import Beat, LoopFactory, Supervisor


async def test_closing_stops_the_loops_in_the_order_they_started() -> None:
    stopped: list[str] = []

    def forever(name: str) -> LoopFactory:
        async def loop(beat: Beat) -> None:
            try:
                await asyncio.Event().wait()
            finally:
                stopped.append(name)

        return loop

    loops = Supervisor(lambda name, exc: pytest.fail(f"the {name} loop broke: {exc!r}"))
    for name in ("claims", "verdicts", "sweeper"):
        loops.start(name, forever(name))
    await asyncio.sleep(0)
    await loops.close()
    assert stopped == ["claims", "verdicts", "sweeper"]


async def test_closing_can_itself_be_cancelled() -> None:
    """A loop slow to stop keeps `close` waiting; whoever called `close` can still give up on
    it: the cancellation aimed at `close` is not mistaken for the loop's own ending."""
    finishing = asyncio.Event()

    async def slow_to_stop(beat: Beat) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await finishing.wait()  # its last work, which outlasts the caller's patience
            raise

    loops = Supervisor(lambda name, exc: pytest.fail(f"the {name} loop broke: {exc!r}"))
    loops.start("slow", slow_to_stop)
    await asyncio.sleep(0)
    closing = asyncio.create_task(loops.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
