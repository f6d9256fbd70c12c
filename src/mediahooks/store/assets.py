"""Media asset state changes. Each one commits with the hook it emits (through the outbox) or
not at all; the lifecycle rules themselves live in `mediahooks.assets`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import events
from mediahooks.assets import Status, check_transition
from mediahooks.clock import now_ms
from mediahooks.store import outbox
from mediahooks.store.schema import DbRow, media_assets


class AssetNotFound(LookupError):
    pass


@dataclass(frozen=True)
class NewAsset:
    account_id: str
    type: events.MediaType
    token_id: int
    stream_name: str
    start_time: int
    stop_time: int | None = None
    name: str | None = None
    expiration: int | None = None


def hook_data(row: DbRow, metadata: dict[str, Any] | None) -> events.MediaData:
    return events.MediaData(
        media_asset_id=row.id,
        token_id=row.token_id,
        stream_name=row.stream_name,
        stream_id=f"{row.account_id}/{row.stream_name}",
        start_time=row.start_time,
        type=row.type,
        metadata=metadata,
        expiration=row.expiration,
    )


async def create(conn: AsyncConnection, asset: NewAsset) -> DbRow:
    """A new asset in `processing`, with its `processing` hook."""
    check_transition(None, Status.PROCESSING)
    now = now_ms()
    row = (
        await conn.execute(
            media_assets.insert()
            .values(
                id=events.new_asset_id(),
                account_id=asset.account_id,
                type=asset.type,
                token_id=asset.token_id,
                stream_name=asset.stream_name,
                status=Status.PROCESSING.value,
                start_time=asset.start_time,
                stop_time=asset.stop_time,
                name=asset.name,
                metadata="{}",
                expiration=asset.expiration,
                created_at=now,
                updated_at=now,
            )
            .returning(*media_assets.c)
        )
    ).one()
    await outbox.emit(
        conn, row.account_id, events.media_hook("processing", hook_data(row, {}), now)
    )
    return row


async def transition(
    conn: AsyncConnection,
    asset_id: str,
    new: Status,
    *,
    metadata: dict[str, Any] | None = None,
    error: str | None = None,
) -> DbRow:
    """Move an asset to ``new`` and emit its hook, in the caller's transaction.

    The row is locked first, so two changes of one asset commit one after the other and their
    events (and deliveries) are numbered in that order.
    """
    current = (
        await conn.execute(
            select(media_assets).where(media_assets.c.id == asset_id).with_for_update()
        )
    ).first()
    if current is None:
        raise AssetNotFound(asset_id)
    event = check_transition(Status(current.status), new)
    now = now_ms()
    values: dict[str, Any] = {"status": new.value, "updated_at": now}
    if metadata is not None:
        values["metadata"] = json.dumps(metadata)
    if error is not None:
        values["error"] = error
    if new is Status.DELETED:
        values["removed_at"] = now
    row = (
        await conn.execute(
            update(media_assets)
            .where(media_assets.c.id == asset_id)
            .values(values)
            .returning(*media_assets.c)
        )
    ).one()
    if event is not None:
        hook_metadata = {"error": error} if new is Status.ERROR else json.loads(row.metadata)
        await outbox.emit(
            conn, row.account_id, events.media_hook(event, hook_data(row, hook_metadata), now)
        )
    return row
