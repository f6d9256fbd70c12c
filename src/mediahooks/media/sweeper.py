"""The sweeper: ends broadcasts that went silent, removes expired assets, forgets expired
timeline segments and delivery history past its retention. Every step is idempotent, so any
number of sweepers can run."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path

from sqlalchemy import select

from mediahooks import metrics
from mediahooks.clock import now_ms
from mediahooks.config import Settings
from mediahooks.loops import Beat
from mediahooks.media import removal
from mediahooks.media.ingest import end_broadcast
from mediahooks.storage import Storage
from mediahooks.storage.profiles import Stores
from mediahooks.storage.uploads import segment_key
from mediahooks.store import assets, history, timelines
from mediahooks.store.db import Database
from mediahooks.store.schema import accounts, deliveries, events
from mediahooks.timeline import MAX_TIMELINE_MS

log = logging.getLogger("mediahooks.sweeper")

DAY_MS = 86_400_000
DEFAULT_TIMELINE_DAYS = 1
# Rows of history forgotten per transaction, and transactions per sweep: short transactions
# that never hold up deliveries, and a backlog of history (a retention just shortened) cleared
# over a few sweeps rather than in one.
HISTORY_BATCH = 250
HISTORY_BATCHES_PER_SWEEP = 20


async def sweep(db: Database, settings: Settings, stores: Stores) -> None:
    now = now_ms()
    await end_idle_broadcasts(db, now - int(settings.idle_timeout * 1000), now)
    async with db.engine.connect() as conn:
        due = await assets.due_for_removal(conn, now)
    for asset in due:
        await removal.remove(db, stores, asset)
    await forget_expired_segments(db, now, stores.own)
    if settings.history_days:
        await forget_old_history(db, now - int(settings.history_days * DAY_MS))


async def end_idle_broadcasts(db: Database, arrived_before: int, now: int) -> None:
    async with db.engine.connect() as conn:
        idle = await timelines.idle(conn, arrived_before)
    for broadcast_id in idle:
        async with db.transaction() as conn:
            # Re-read under lock: a segment may have arrived since, or another sweeper ended it.
            broadcast = await timelines.get(conn, broadcast_id, lock=True)
            if (
                broadcast
                and broadcast.ended_at is None
                and broadcast.last_arrival_at < arrived_before
            ):
                await end_broadcast(conn, broadcast, now)


async def forget_expired_segments(db: Database, now: int, storage: Storage | None = None) -> None:
    async with db.engine.connect() as conn:
        account_ids = list((await conn.execute(select(accounts.c.id))).scalars())
        doomed = list(await timelines.beyond_cap(conn, MAX_TIMELINE_MS))
        for account_id in account_ids:
            rule = (await assets.expiration_rules(conn, account_id)).get("timelines")
            days = int(rule["days"]) if rule else DEFAULT_TIMELINE_DAYS
            doomed += await timelines.expired_segments(conn, account_id, now - days * DAY_MS)
    if not doomed:
        return
    # Rows first: a clip being cut then fails cleanly ("expired") rather than on a missing file.
    async with db.transaction() as conn:
        await timelines.forget_segments(conn, [s.id for s in doomed])
    await removal.delete_files([Path(s.path) for s in doomed])
    if storage is not None and storage.kind != "local":
        try:
            await storage.delete([storage.location(segment_key(s.path)) for s in doomed])
        except Exception as exc:  # the bucket away: its copies go with a later lifecycle rule
            log.warning("%d expired segments left in the bucket (%s)", len(doomed), exc)


async def forget_old_history(db: Database, cutoff: int) -> None:
    """Forget finished deliveries created and last changed before ``cutoff``, then the events
    left without any."""
    for kind, table, forget in (
        ("deliveries", deliveries, partial(history.forget_deliveries, unchanged_since=cutoff)),
        ("events", events, history.forget_events),
    ):
        async with db.engine.connect() as conn:
            below = await history.first_id_since(conn, table, cutoff)
        after: int | None = 0
        for _ in range(HISTORY_BATCHES_PER_SWEEP):
            if after is None:
                break
            async with db.transaction() as conn:
                forgotten, after = await forget(conn, after, below, HISTORY_BATCH)
            metrics.HISTORY_FORGOTTEN.labels(kind).inc(forgotten)


async def run(db: Database, settings: Settings, stores: Stores, beat: Beat) -> None:
    while True:
        await sweep(db, settings, stores)
        beat()
        await asyncio.sleep(settings.sweep_interval)
