"""Queries for live thumbnails: which live broadcasts are due one, and the claim on it."""

from __future__ import annotations

from sqlalchemy import exists, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store import webhooks
from mediahooks.store.schema import DbRow, broadcasts, publish_tokens, segments
from mediahooks.store.schema import webhooks as webhooks_table


async def due(conn: AsyncConnection, now: int, interval_ms: int) -> list[DbRow]:
    """Live broadcasts whose token has `enableThumbnails`, with a segment to take a picture
    from, whose last thumbnail is ``interval_ms`` old or that have none, and whose account has
    a webhook taking thumbnails (no picture is decoded for nobody)."""
    listening = exists().where(
        webhooks.subscribing(broadcasts.c.account_id, "is_thumbnail_hooks"),
        webhooks_table.c.disabled_until.is_(None) | (webhooks_table.c.disabled_until <= now),
    )
    query = (
        select(broadcasts)
        .join(publish_tokens, publish_tokens.c.id == broadcasts.c.token_id)
        .where(
            broadcasts.c.ended_at.is_(None),
            publish_tokens.c.enable_thumbnails == true(),
            or_(
                broadcasts.c.thumbnail_at.is_(None),
                broadcasts.c.thumbnail_at <= now - interval_ms,
            ),
            exists().where(segments.c.broadcast_id == broadcasts.c.id),
            listening,
        )
        .order_by(func.coalesce(broadcasts.c.thumbnail_at, 0), broadcasts.c.id)
    )
    return list((await conn.execute(query)).all())


async def claim(conn: AsyncConnection, broadcast_id: int, now: int, interval_ms: int) -> bool:
    """Take the broadcast's next thumbnail; False when another process took it first."""
    result = await conn.execute(
        update(broadcasts)
        .where(
            broadcasts.c.id == broadcast_id,
            or_(
                broadcasts.c.thumbnail_at.is_(None),
                broadcasts.c.thumbnail_at <= now - interval_ms,
            ),
        )
        .values(thumbnail_at=now)
    )
    return bool(result.rowcount)


async def newest_segment(conn: AsyncConnection, broadcast_id: int) -> str | None:
    query = (
        select(segments.c.path)
        .where(segments.c.broadcast_id == broadcast_id)
        .order_by(segments.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).scalar()
