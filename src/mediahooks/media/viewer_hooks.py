"""Viewer counting and its `viewerConnection` hooks, in this process.

Sessions live in memory (`viewers.Audience`): a deployment of several API processes counts per
process, so each process reports its own first viewer and its own empty audience. The hooks go
through the outbox like every other event (signed, retried, in order per stream); they are
committed by one loop per API process (`run`, under the service's supervisor), in the order the
audience changed, so a request never waits for a database write; while the database is away the
hooks wait in order, and the supervisor starts the loop again once it is back.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from mediahooks import events
from mediahooks.clock import now_ms
from mediahooks.config import Settings
from mediahooks.loops import Beat
from mediahooks.media.viewers import Audience, StreamKey
from mediahooks.store import outbox
from mediahooks.store.db import Database
from mediahooks.wakeups import woken


class ViewerHooks:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.audience = Audience(
            session_timeout=settings.viewer_timeout,
            no_viewers_delay=settings.no_viewers_delay,
            attempt_interval=settings.viewer_attempt_interval,
        )
        # Often enough that a due NoActiveViewers is late by a small part of its delay.
        self.tick = max(0.05, min(1.0, settings.viewer_timeout / 4, settings.no_viewers_delay / 4))
        self.due: deque[tuple[StreamKey, str, int]] = deque()
        self.wake = asyncio.Event()

    def seen(self, key: StreamKey, session: str) -> None:
        """A viewer of the live stream ``key`` fetched its playlist or a segment."""
        self._queue(key, self.audience.seen(key, session, time.monotonic()))

    def attempted(self, key: StreamKey) -> None:
        """Someone asked to watch ``key`` while it is not live."""
        self._queue(key, self.audience.attempted(key, time.monotonic()))

    def _queue(self, key: StreamKey, names: list[str]) -> None:
        for name in names:
            self.due.append((key, name, now_ms()))
            self.wake.set()

    async def run(self, beat: Beat) -> None:
        while True:
            for key, name in self.audience.tick(time.monotonic()):
                self.due.append((key, name, now_ms()))
            self.wake.clear()  # before sending: what is queued meanwhile wakes the next round
            await self._send()
            beat()
            await woken(self.wake, self.tick)

    async def _send(self) -> None:
        """Commit the due hooks in order; one that meets an outage stays first in line."""
        while self.due:
            (account, stream), name, at = self.due[0]
            data = events.ViewerData(
                name=stream, account_id=account, stream_id=f"{account}/{stream}"
            )
            async with self.db.transaction() as conn:
                await outbox.emit(conn, account, events.viewer_hook(name, data, at))
            self.due.popleft()
