"""The attempt log and replay: a webhook's deliveries page by page, one delivery with its
attempts, and queueing finished deliveries again."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store.claims import PENDING
from mediahooks.store.db import mark_wake
from mediahooks.store.paging import keyset
from mediahooks.store.schema import DbRow, attempts, deliveries, events

_listed = (
    deliveries.c.id,
    deliveries.c.webhook_id,
    deliveries.c.status,
    deliveries.c.attempt_count,
    deliveries.c.next_attempt_at,
    deliveries.c.last_status,
    deliveries.c.last_error,
    deliveries.c.created_at,
    deliveries.c.completed_at,
    events.c.msg_id,
    events.c.hook_type,
    events.c.event,
    events.c.ordering_key,
)


async def page(
    conn: AsyncConnection,
    webhook_id: int,
    statuses: list[str],
    starting_id: int | None,
    count: int,
    descending: bool,
) -> list[DbRow]:
    query = (
        select(*_listed)
        .join(events, events.c.id == deliveries.c.event_id)
        .where(deliveries.c.webhook_id == webhook_id)
    )
    if statuses:
        query = query.where(deliveries.c.status.in_(statuses))
    query = keyset(query, deliveries.c.id, starting_id, count, descending)
    return list((await conn.execute(query)).all())


async def get(
    conn: AsyncConnection, webhook_id: int, delivery_id: int
) -> tuple[DbRow, list[DbRow]] | None:
    delivery = (
        await conn.execute(
            select(*_listed, events.c.body, events.c.headers)
            .join(events, events.c.id == deliveries.c.event_id)
            .where(deliveries.c.id == delivery_id, deliveries.c.webhook_id == webhook_id)
        )
    ).first()
    if delivery is None:
        return None
    tried = await conn.execute(
        select(attempts).where(attempts.c.delivery_id == delivery_id).order_by(attempts.c.id)
    )
    return delivery, list(tried.all())


def _requeue(now: int) -> dict[str, Any]:
    return {
        "status": PENDING,
        "tries": 0,
        "next_attempt_at": now,
        "completed_at": None,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }


async def retry(conn: AsyncConnection, webhook_id: int, delivery_id: int, now: int) -> bool:
    """Queue a finished delivery once more, with a fresh round of attempts."""
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.webhook_id == webhook_id,
            deliveries.c.status.in_(("succeeded", "failed")),
        )
        .values(_requeue(now))
    )
    if result.rowcount:
        mark_wake(conn)
    return bool(result.rowcount)


async def recover(conn: AsyncConnection, webhook_id: int, since: int, now: int) -> int:
    """Queue again every failed delivery of the webhook created since ``since``."""
    result = await conn.execute(
        update(deliveries)
        .where(
            and_(
                deliveries.c.webhook_id == webhook_id,
                deliveries.c.status == "failed",
                deliveries.c.created_at >= since,
            )
        )
        .values(_requeue(now))
    )
    if result.rowcount:
        mark_wake(conn)
    return int(result.rowcount)
