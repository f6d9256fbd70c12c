"""The running service: database, first account and background workers, shared by the API.

`serve` opens it with the dispatcher inside; `worker` opens it with the dispatcher alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mediahooks.config import Settings
from mediahooks.delivery.dispatcher import Dispatcher
from mediahooks.ingest.live import LiveIngest
from mediahooks.ingest.rtmp import RtmpServer
from mediahooks.media import sweeper
from mediahooks.media.worker import MediaWorker
from mediahooks.store import accounts
from mediahooks.store.db import Database

log = logging.getLogger("mediahooks")


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.sqlalchemy_url, settings.sqlite_synchronous)
        self.account_id = ""
        self.dispatcher: Dispatcher | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Set when the server stops: long-lived responses (the dashboard's live updates) end.
        self.stopping = asyncio.Event()
        # Live publishers of every door (the API process opens the RTMP one: `server.start`).
        self.live = LiveIngest(self.db, settings)
        self.rtmp: RtmpServer | None = None

    async def open(self, *, dispatch: bool = True) -> str | None:
        """Migrate, make sure the first account exists, start the background work (unless
        ``dispatch`` is off): the dispatcher, the media worker and the sweeper.

        Returns the first account's API secret when it was just created (shown once).
        """
        await self.db.migrate()
        secret = self.settings.api_secret.get_secret_value() if self.settings.api_secret else None
        async with self.db.transaction() as conn:
            self.account_id, created = await accounts.ensure(conn, secret)
        if dispatch:
            await self.db.listen()
            self.dispatcher = Dispatcher(self.db, self.settings)
            media = MediaWorker(self.db, self.settings)
            for name, work in (
                ("dispatcher", self.dispatcher.run()),
                ("media", media.run()),
                ("sweeper", sweeper.run(self.db, self.settings)),
            ):
                self._tasks.append(asyncio.create_task(work, name=name))
        return created

    async def close(self) -> None:
        self.stopping.set()
        if self.rtmp is not None:
            await self.rtmp.close()
        await self.live.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.db.close()
