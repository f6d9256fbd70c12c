"""The running service: database, first account and background loops, shared by the API.

`serve` opens it with the loops inside; `worker` opens it with the loops alone. The loops run
under one supervisor (`mediahooks.loops`): an outage is waited out; a loop broken by a bug sets
`broken`, and the command that runs the service then stops with a non-zero exit.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text

from mediahooks.config import Settings
from mediahooks.delivery.dispatcher import Dispatcher
from mediahooks.ingest.known_tokens import KnownTokens
from mediahooks.ingest.live import LiveIngest
from mediahooks.ingest.rtmp import RtmpServer
from mediahooks.ingest.srt import SrtServer
from mediahooks.ingest.whip import WhipIngest
from mediahooks.loops import Supervisor
from mediahooks.media import sweeper, thumbnails
from mediahooks.media.viewer_hooks import ViewerHooks
from mediahooks.media.worker import MediaWorker
from mediahooks.storage import Storage, open_storage
from mediahooks.storage.profiles import Stores
from mediahooks.storage.uploads import SegmentUploads
from mediahooks.store import accounts
from mediahooks.store.db import Database
from mediahooks.store.dialects import connect

log = logging.getLogger("mediahooks")

READY_TIMEOUT = 2.0  # how long `/readyz` waits for the database before saying it is away


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db: Database = connect(settings.sqlalchemy_url, settings.sqlite_synchronous)
        self.account_id = ""
        self.dispatcher: Dispatcher | None = None
        self.loops = Supervisor(self._break)
        # Set when the server stops: long-lived responses (the dashboard's live updates) end.
        self.stopping = asyncio.Event()
        # Set when a loop broke on a bug: the process must end, and not with success.
        self.broken = asyncio.Event()
        # Live publishers of every door (the API process opens the RTMP and SRT ones:
        # `server.start`).
        self.storage: Storage = open_storage(settings)
        # Each asset's storage: the one above, or its storage profile's bucket.
        self.stores = Stores(self.db, self.storage, settings.data_dir)
        self.uploads = SegmentUploads(self.storage, settings.storage_spool_bytes, settings.data_dir)
        self.live = LiveIngest(self.db, settings, self.uploads)
        self.rtmp: RtmpServer | None = None
        self.srt: SrtServer | None = None
        # The publish tokens in memory, for the SRT door's decisions in libsrt's thread.
        self.known_tokens = KnownTokens()
        self.whip = WhipIngest(self.live, settings)
        # Viewers of this process's playback (its loop runs beside the API: `server.start`).
        self.viewers = ViewerHooks(self.db, settings)

    async def open(self, *, dispatch: bool = True) -> str | None:
        """Migrate, make sure the first account exists, start the background loops (unless
        ``dispatch`` is off): the dispatcher's, the media worker and the sweeper.

        Returns the first account's API secret when it was just created (shown once).
        """
        await self.db.migrate()
        secret = self.settings.api_secret.get_secret_value() if self.settings.api_secret else None
        async with self.db.transaction() as conn:
            self.account_id, created = await accounts.ensure(conn, secret)
        if self.uploads.needed:
            # Segments a previous run took in while the bucket was away go up first.
            await asyncio.to_thread(self.uploads.recover)
            self.loops.start("uploads", self.uploads.run)
        if dispatch:
            for name, loop in self.db.loops().items():
                self.loops.start(name, loop)
            self.dispatcher = Dispatcher(self.db, self.settings)
            for name, loop in self.dispatcher.loops().items():
                self.loops.start(name, loop)
            self.loops.start("media", MediaWorker(self.db, self.settings, self.stores).run)
            self.loops.start(
                "sweeper", lambda beat: sweeper.run(self.db, self.settings, self.stores, beat)
            )
            self.loops.start(
                "thumbnails",
                lambda beat: thumbnails.run(self.db, self.settings, self.storage, beat),
            )
        return created

    async def ready(self) -> dict[str, str]:
        """What keeps the service from doing its work now (empty when it is ready): the
        database out of reach, loops waiting out an outage or stopped."""
        problems = dict(self.loops.waiting())
        try:
            async with asyncio.timeout(READY_TIMEOUT), self.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            problems["database"] = f"unreachable ({type(exc).__name__}: {exc})".strip()
        return problems

    def _break(self, loop: str, exc: BaseException) -> None:
        self.broken.set()
        self.stopping.set()

    async def close(self) -> None:
        self.stopping.set()
        if self.rtmp is not None:
            await self.rtmp.close()
        if self.srt is not None:
            await self.srt.close()
        await self.whip.close()
        await self.live.close()
        await self.loops.close()
        if self.dispatcher is not None:
            self.dispatcher.close()
        await self.db.close()
        await self.storage.close()
