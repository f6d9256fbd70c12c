"""Removing an asset: `deleting`, its files gone, then `deleted` with its hook.

Two transactions on purpose: the files go only once `deleting` is committed, and `deleted` is
said only once they are gone. A crash in between leaves `deleting`, which the sweeper finishes;
so does a bucket that cannot be reached for the delete.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from mediahooks.assets import InvalidTransition, Status
from mediahooks.media.files import files_of
from mediahooks.storage.profiles import Stores
from mediahooks.store import assets
from mediahooks.store.db import Database
from mediahooks.store.schema import DbRow

log = logging.getLogger("mediahooks.media")


async def remove(db: Database, stores: Stores, asset: DbRow) -> None:
    if asset.status != Status.DELETING.value:
        started = await _advance(db, asset.id, Status.DELETING)
        if started is None:
            return
        asset = started
    try:
        # The asset's own storage: the service's, or its storage profile's bucket.
        storage = await stores.of(asset)
        await storage.delete(files_of(asset))
    except Exception as exc:  # the bucket away: the asset stays `deleting`, swept again later
        log.warning("files of asset %s not deleted yet (%s)", asset.id, type(exc).__name__)
        return
    await _advance(db, asset.id, Status.DELETED)


async def _advance(db: Database, asset_id: str, new: Status) -> DbRow | None:
    """The asset moved to ``new``; None when a concurrent removal (another DELETE, the sweeper)
    has already taken it there or past: that one finishes it, and says `deleted` once."""
    try:
        async with db.transaction() as conn:
            return await assets.transition(conn, asset_id, new)
    except InvalidTransition:
        return None


async def delete_files(paths: list[Path]) -> None:
    """Local files (timeline segments, which each node keeps in its own data directory)."""

    def unlink() -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    await asyncio.to_thread(unlink)
