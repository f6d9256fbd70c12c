"""Named queries for webhooks. Deleting is soft: the attempt log keeps pointing at the row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import signing
from mediahooks.clock import now_ms
from mediahooks.store.db import mark_wake
from mediahooks.store.paging import keyset
from mediahooks.store.schema import DbRow, deliveries, webhooks

# The REST field of each hook-type flag, and its column.
FLAG_COLUMNS: dict[str, str] = {
    "isFeedHooks": "is_feed_hooks",
    "isMediaHooks": "is_media_hooks",
    "isRecordingHooks": "is_recording_hooks",
    "isThumbnailHooks": "is_thumbnail_hooks",
    "isTranscoderHooks": "is_transcoder_hooks",
    "isViewerConnectionHooks": "is_viewer_connection_hooks",
}

# The hook `type` on the wire -> the flag a webhook needs to receive it.
TYPE_FLAGS: dict[str, str] = {
    "media": "is_media_hooks",
    "feeds": "is_feed_hooks",
    "recordings": "is_recording_hooks",
    "thumbnail": "is_thumbnail_hooks",
    "transcoder": "is_transcoder_hooks",
    "viewerConnection": "is_viewer_connection_hooks",
}

_live = webhooks.c.deleted_at.is_(None)


async def create(conn: AsyncConnection, account_id: str, values: dict[str, Any]) -> DbRow:
    now = now_ms()
    row = {column: False for column in FLAG_COLUMNS.values()}
    row.update(values)
    result = await conn.execute(
        webhooks.insert()
        .values(
            account_id=account_id,
            secret=signing.new_secret(),
            created_at=now,
            updated_at=now,
            **row,
        )
        .returning(*webhooks.c)
    )
    return result.one()


async def get(conn: AsyncConnection, account_id: str, webhook_id: int) -> DbRow | None:
    query = select(webhooks).where(
        webhooks.c.id == webhook_id, webhooks.c.account_id == account_id, _live
    )
    return (await conn.execute(query)).first()


async def update_one(
    conn: AsyncConnection,
    account_id: str,
    webhook_id: int,
    values: dict[str, Any],
    *,
    refresh_secret: bool = False,
    re_enable: bool = False,
    secret_grace_ms: int = 0,
) -> DbRow | None:
    current = await get(conn, account_id, webhook_id)
    if current is None:
        return None
    now = now_ms()
    changes = dict(values, updated_at=now)
    if refresh_secret:
        # The old key keeps signing beside the new one for the grace period.
        changes.update(
            secret=signing.new_secret(),
            previous_secret=current.secret,
            previous_secret_until=now + secret_grace_ms,
        )
    if re_enable:
        changes.update(disabled_until=None, disabled_reason=None, failing_since=None)
        await _update_pending(conn, webhook_id, next_attempt_at=now, updated_at=now)
        mark_wake(conn)
    result = await conn.execute(
        update(webhooks).where(webhooks.c.id == webhook_id).values(changes).returning(*webhooks.c)
    )
    return result.one()


async def delete(conn: AsyncConnection, account_id: str, webhook_id: int) -> bool:
    if await get(conn, account_id, webhook_id) is None:
        return False
    now = now_ms()
    await _update_pending(
        conn, webhook_id, status="cancelled", completed_at=now, updated_at=now, lease_until=None
    )
    await conn.execute(
        update(webhooks).where(webhooks.c.id == webhook_id).values(deleted_at=now, updated_at=now)
    )
    return True


async def _update_pending(conn: AsyncConnection, webhook_id: int, **values: Any) -> None:
    """Change a webhook's pending deliveries.

    Rows are locked in id order and before the webhook's own row: the dispatcher writes its
    verdicts in that same order, so the two never wait on each other in a circle.
    """
    ordered = (
        select(deliveries.c.id)
        .where(deliveries.c.webhook_id == webhook_id, deliveries.c.status == "pending")
        .order_by(deliveries.c.id)
        .with_for_update()
    )
    await conn.execute(update(deliveries).where(deliveries.c.id.in_(ordered)).values(values))


async def page(
    conn: AsyncConnection,
    account_id: str,
    starting_id: int | None,
    count: int,
    descending: bool,
) -> list[DbRow]:
    """A page of webhooks after ``starting_id`` (exclusive) in id order."""
    query = select(webhooks).where(webhooks.c.account_id == account_id, _live)
    query = keyset(query, webhooks.c.id, starting_id, count, descending)
    return list((await conn.execute(query)).all())


def subscribing(account_id: Any, flag: str) -> ColumnElement[bool]:
    """The condition on `webhooks` of a live webhook of ``account_id`` with ``flag`` set."""
    return and_(webhooks.c.account_id == account_id, _live, webhooks.c[flag] == true())


def subscribers_query(flag: str) -> Select[Any]:
    """(id, filter) of the live webhooks of ``:account_id`` with ``flag`` set."""
    return (
        select(webhooks.c.id, webhooks.c.filter)
        .where(subscribing(bindparam("account_id"), flag))
        .order_by(webhooks.c.id)
    )


def signing_secrets(
    secret: str, previous_secret: str | None, previous_secret_until: int | None, now: int
) -> list[str]:
    """The current secret first, then the previous one while its grace period lasts."""
    keys = [secret]
    if previous_secret and (previous_secret_until or 0) > now:
        keys.append(previous_secret)
    return keys
