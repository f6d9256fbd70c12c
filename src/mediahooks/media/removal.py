"""Removing an asset: `deleting`, its files gone, then `deleted` with its hook.

Two transactions on purpose: the files go only once `deleting` is committed, and `deleted` is
said only once they are gone. A crash in between leaves `deleting`, which the sweeper finishes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from mediahooks.assets import Status
from mediahooks.media.files import files_of
from mediahooks.storage import Storage
from mediahooks.store import assets
from mediahooks.store.db import Database
from mediahooks.store.schema import DbRow


async def remove(db: Database, storage: Storage, asset: DbRow) -> None:
    if asset.status != Status.DELETING.value:
        async with db.transaction() as conn:
            asset = await assets.transition(conn, asset.id, Status.DELETING)
    await storage.delete(files_of(asset))
    async with db.transaction() as conn:
        await assets.transition(conn, asset.id, Status.DELETED)


async def delete_files(paths: list[Path]) -> None:
    """Local files (timeline segments, which each node keeps in its own data directory)."""

    def unlink() -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    await asyncio.to_thread(unlink)
