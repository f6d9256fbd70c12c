"""Live thumbnails: a JPEG of each live stream whose publish token has `enableThumbnails`,
every `MEDIAHOOKS_THUMBNAIL_INTERVAL` seconds (the platform's 30 s), to `thumbnail` webhooks.

Each picture is the first keyframe of the stream's newest segment, decoded alone at the
stream's own size, and goes through the outbox like every hook (signed, retried, in order per
stream; a newer picture cancels an older one still waiting). Any number of processes run the
loop: moving a broadcast's `thumbnail_at` forward is the claim on its next picture.
"""

from __future__ import annotations

import asyncio
import logging

from mediahooks import events
from mediahooks.clock import now_ms
from mediahooks.config import Settings
from mediahooks.loops import Beat
from mediahooks.media import stills
from mediahooks.storage import Storage, segments
from mediahooks.store import outbox, timelines
from mediahooks.store import thumbnails as store
from mediahooks.store.db import Database
from mediahooks.store.outbox import Emitted
from mediahooks.store.schema import DbRow

log = logging.getLogger(__name__)


async def take(
    db: Database, storage: Storage, broadcast: DbRow, segment_path: str
) -> Emitted | None:
    """Decode one picture of the broadcast and queue its `thumbnail` hook; None when the
    segment holds no picture to take (an audio-only stream, a file already swept, not in the
    bucket yet) or the broadcast ended meanwhile. The segment is read through the storage: any
    node takes the picture of a stream another node ingests."""
    try:
        segment = await segments.read_all(storage, segment_path)
        init_path = broadcast.init_path
        init = await segments.read_all(storage, init_path) if init_path else None
        jpeg = await asyncio.to_thread(stills.segment_thumbnail, segment, init)
    except stills.NoPicture as exc:
        log.info("no thumbnail of %s/%s: %s", broadcast.account_id, broadcast.stream_name, exc)
        return None
    except Exception as exc:  # the file swept, or the bucket away: the next picture is due soon
        log.info(
            "no thumbnail of %s/%s: its segment cannot be read (%s: %s)",
            broadcast.account_id,
            broadcast.stream_name,
            type(exc).__name__,
            exc,
        )
        return None
    hook = events.ImageHook(
        timestamp=now_ms(),
        feed_id=broadcast.feed_id,
        stream_id=f"{broadcast.account_id}/{broadcast.stream_name}",
        token_id=broadcast.token_id,
        jpeg=jpeg,
    )
    async with db.transaction() as conn:
        # Locked: a broadcast that ended while its picture was decoded gets no picture after
        # its end (the end locks the row too, so the two never interleave).
        current = await timelines.get(conn, broadcast.id, lock=True)
        if current is None or current.ended_at is not None:
            return None
        return await outbox.emit(conn, broadcast.account_id, hook)


async def take_due(db: Database, storage: Storage, interval_ms: int) -> int:
    """One picture of every live stream that is due one; how many were queued."""
    now = now_ms()
    async with db.engine.connect() as conn:
        due = await store.due(conn, now, interval_ms)
    taken = 0
    for broadcast in due:
        async with db.transaction() as conn:
            if not await store.claim(conn, broadcast.id, now, interval_ms):
                continue  # another process took this one
            path = await store.newest_segment(conn, broadcast.id)
        if path and await take(db, storage, broadcast, path):
            taken += 1
    return taken


async def run(db: Database, settings: Settings, storage: Storage, beat: Beat) -> None:
    interval_ms = int(settings.thumbnail_interval * 1000)
    while True:
        await take_due(db, storage, interval_ms)
        beat()
        # A tenth of the interval: a picture is late by at most that much.
        await asyncio.sleep(min(settings.thumbnail_interval / 10, 1.0))
