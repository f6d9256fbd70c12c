"""The media worker: claim an asset ready to cut, cut it in a separate process, and commit
`complete` (or `error`) with its hook.

The cut runs in a process pool so the API and the dispatcher never wait on it. The claim is a
lease renewed while the cut runs; a worker that dies leaves the asset `processing`, its lease
runs out, and the asset is cut again, by this worker after a restart or by another one. Only
the first to commit moves it to `complete`, so `completed` is sent once.

The cut is written locally (`Storage.staging`) and committed to the storage before the asset is
`complete`: with a bucket, `completed` is sent only once the bucket holds the file, and a bucket
that is away holds the asset in `processing` (lease kept) until the upload goes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import uuid
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

from mediahooks.assets import InvalidTransition, Status
from mediahooks.clock import now_ms
from mediahooks.config import Settings
from mediahooks.loops import Beat
from mediahooks.media import containers, cutter, files
from mediahooks.media.probe import MediaError
from mediahooks.storage import poster_of
from mediahooks.storage.profiles import Stores
from mediahooks.storage.uploads import segment_key
from mediahooks.store import assets, timelines
from mediahooks.store.db import MEDIA, Database
from mediahooks.store.outage import is_outage
from mediahooks.store.schema import DbRow
from mediahooks.wakeups import woken

log = logging.getLogger("mediahooks.media")

LEASE_MS = 60_000
PR_SET_PDEATHSIG = 1
# Segments fetched at once from the bucket for a cut, and how long a cut waits for a segment
# its ingesting node has not uploaded yet.
FETCHES = 8
SEGMENT_WAIT = 300
GONE = "the requested range has left the timeline (its segments expired) before it could be cut"


def die_with_parent() -> None:
    """Make a pool process end with the service, even when the service is killed outright."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class MediaWorker:
    def __init__(self, db: Database, settings: Settings, stores: Stores) -> None:
        self.db = db
        self.settings = settings
        self.stores = stores
        self.storage = stores.own  # where timeline segments are
        self.owner = f"media-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        db.on_commit_wake(MEDIA, self._wake.set)

    async def run(self, beat: Beat) -> None:
        """Cut until cancelled; an error in one cutting loop stops them all (the supervisor
        decides what follows: wait out an outage, or stop the process)."""
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            self.settings.media_processes, mp_context=context, initializer=die_with_parent
        ) as pool:
            async with asyncio.TaskGroup() as loops:
                for _ in range(self.settings.media_processes):
                    loops.create_task(self._loop(pool, beat))

    async def _loop(self, pool: ProcessPoolExecutor, beat: Beat) -> None:
        while True:
            self._wake.clear()
            async with self.db.transaction() as conn:
                asset = await assets.claim(conn, self.owner, now_ms(), LEASE_MS)
            beat()
            if asset is None:
                await woken(self._wake, self.settings.poll_interval)
                continue
            heartbeat = asyncio.create_task(self._keep_lease(asset.id))
            try:
                await self._process(asset, pool)
            except InvalidTransition:
                log.warning("asset %s was finished elsewhere; dropping this cut", asset.id)
            finally:
                heartbeat.cancel()

    async def _keep_lease(self, asset_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_MS / 3000)
            try:
                async with self.db.transaction() as conn:
                    await assets.renew(conn, asset_id, self.owner, now_ms() + LEASE_MS)
            except Exception as exc:
                # The cut goes on; should the lease run out meanwhile, another claim cuts the
                # asset again and the first to finish wins (`InvalidTransition` for the other).
                if not is_outage(exc):
                    raise

    async def _process(self, asset: DbRow, pool: ProcessPoolExecutor) -> None:
        async with self.db.engine.connect() as conn:
            broadcast = await timelines.get(conn, asset.broadcast_id)
            rows = await timelines.segments_between(
                conn, asset.broadcast_id, asset.start_time, asset.stop_time
            )
        # The range must still start inside the timeline; the sweeper may have expired it.
        if broadcast is None or not rows or rows[0].start_ms > asset.start_time + 500:
            await self._fail(asset, GONE)
            return
        # The clip's own storage: the service's, or the storage profile its request named.
        try:
            storage = await self.stores.of(asset)
        except LookupError as exc:
            await self._fail(asset, str(exc))
            return
        clips = containers.timeline(broadcast.kind).clips  # MP4, or WebM for VP8
        key = self.stores.key(asset, clips.name)
        out = storage.staging(key)
        poster = storage.staging(poster_of(key))
        started = now_ms()
        # Segments another node ingested are fetched next to the cut, and go with the folder.
        scratch_dir: AbstractContextManager[str] = (
            contextlib.nullcontext("")
            if self.storage.kind == "local"
            else tempfile.TemporaryDirectory(dir=out.parent)
        )
        with scratch_dir as scratch:
            try:
                paths = await self._local_copies(
                    [r.path for r in rows] + ([broadcast.init_path] if broadcast.init_path else []),
                    Path(scratch),
                )
                segments = [
                    cutter.Segment(path, r.start_ms, r.duration_ms)
                    for path, r in zip(paths, rows, strict=False)
                ]
                result = await asyncio.get_running_loop().run_in_executor(
                    pool,
                    cutter.cut,
                    segments,
                    asset.start_time,
                    asset.stop_time,
                    str(out),
                    paths[-1] if broadcast.init_path else None,
                    str(poster),
                    broadcast.kind,
                )
            except MediaError as exc:
                await self._fail(asset, str(exc))
                return
        for still in files.stills_of(key):
            await storage.commit(still, "image/jpeg")
        location = await storage.commit(key, clips.media_type)
        async with self.db.transaction() as conn:
            await assets.transition(
                conn,
                asset.id,
                Status.COMPLETE,
                metadata=result.metadata,
                file_path=location,
                file_size=result.metadata["sizes"][result.metadata["format"]],
                start_time=result.start_ms,
                stop_time=result.stop_ms,
                lease_owner=None,
                lease_until=None,
            )
        log.info("cut %s %s in %d ms", asset.type, asset.id, now_ms() - started)

    async def _local_copies(self, paths: list[str], scratch: Path) -> list[str]:
        """The files' local paths: this node's own (it ingested them), or copies fetched from
        the bucket into ``scratch``. Whole segments, not byte ranges: a cut reads nearly all of
        each one anyway."""
        if self.storage.kind == "local":
            return paths
        limit = asyncio.Semaphore(FETCHES)

        async def one(index: int, path: str) -> str:
            if os.path.exists(path):  # noqa: ASYNC240 (a stat: cheaper than a thread hop)
                return path
            copy = scratch / f"{index:06d}{Path(path).suffix}"
            async with limit:
                await self._fetch(path, copy)
            return str(copy)

        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(paths))))

    async def _fetch(self, path: str, copy: Path) -> None:
        """Fetch a segment, waiting while its ingesting node has not uploaded it yet (or the
        bucket is away), up to `SEGMENT_WAIT` s."""
        location = self.storage.location(segment_key(path))
        deadline = now_ms() + SEGMENT_WAIT * 1000
        wait = 0.5
        while True:
            try:
                await self.storage.fetch(location, copy)
                return
            except Exception as exc:
                if now_ms() > deadline:
                    raise MediaError(
                        f"the segment {Path(path).name} never reached the media store"
                    ) from exc
                await asyncio.sleep(wait)
                wait = min(wait * 2, 10.0)

    async def _fail(self, asset: DbRow, reason: str) -> None:
        log.warning("asset %s errored: %s", asset.id, reason)
        async with self.db.transaction() as conn:
            await assets.transition(conn, asset.id, Status.ERROR, error=reason)
