"""What changed for an account since a cursor: the feed behind the dashboard's live updates.

Every asset state change and every stream start or end is an event row of the outbox; every
new delivery and every send attempt is a row too; all only grow, so three id cursors tell what
is new. Reading the tables (rather than listening inside this process) sees the work of every
process sharing the database: a separate `mediahooks worker`, another `serve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store.schema import attempts, deliveries, events, webhooks

BATCH = 200


@dataclass
class Cursor:
    event: int = 0
    delivery: int = 0
    attempt: int = 0

    def __str__(self) -> str:
        return f"{self.event}.{self.delivery}.{self.attempt}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        try:
            event, delivery, attempt = (int(p) for p in (value or "").split("."))
        except ValueError:
            return None
        return cls(event, delivery, attempt) if min(event, delivery, attempt) >= 0 else None


async def latest(conn: AsyncConnection) -> Cursor:
    ids = [
        (await conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
        for table in (events, deliveries, attempts)
    ]
    return Cursor(*ids)


Change = tuple[str, dict[str, Any]]  # (SSE event name, its data)


async def changes(conn: AsyncConnection, account: str, cursor: Cursor) -> list[Change]:
    """What happened after ``cursor`` (which moves past it), as (SSE event, data) pairs."""
    out: list[Change] = []
    rows = await conn.execute(
        select(
            events.c.id,
            events.c.hook_type,
            events.c.event,
            events.c.ordering_key,
            events.c.stream_name,
        )
        .where(events.c.account_id == account, events.c.id > cursor.event)
        .order_by(events.c.id)
        .limit(BATCH)
    )
    for row in rows:
        cursor.event = row.id
        if row.hook_type == "media":
            out.append(
                ("asset", {"id": row.ordering_key, "event": row.event, "stream": row.stream_name})
            )
        elif row.hook_type == "feeds":
            out.append(("stream", {"stream": row.stream_name, "event": row.event}))
    rows = await conn.execute(
        select(deliveries.c.id, deliveries.c.webhook_id)
        .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
        .where(webhooks.c.account_id == account, deliveries.c.id > cursor.delivery)
        .order_by(deliveries.c.id)
        .limit(BATCH)
    )
    for row in rows:
        cursor.delivery = row.id
        out.append(("delivery", {"webhook": row.webhook_id, "delivery": row.id, "new": True}))
    rows = await conn.execute(
        select(
            attempts.c.id,
            attempts.c.delivery_id,
            attempts.c.webhook_id,
            attempts.c.status_code,
            attempts.c.error_kind,
        )
        .join(webhooks, webhooks.c.id == attempts.c.webhook_id)
        .where(webhooks.c.account_id == account, attempts.c.id > cursor.attempt)
        .order_by(attempts.c.id)
        .limit(BATCH)
    )
    for row in rows:
        cursor.attempt = row.id
        out.append(
            (
                "delivery",
                {
                    "webhook": row.webhook_id,
                    "delivery": row.delivery_id,
                    "statusCode": row.status_code,
                    "errorKind": row.error_kind,
                },
            )
        )
    return out
