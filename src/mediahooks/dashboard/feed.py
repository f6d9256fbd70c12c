"""What changed for an account since a cursor: the feed behind the dashboard's live updates.

Every asset state change and every stream start or end is an event row of the outbox; every
new delivery and every send attempt is a row too; all only grow, so three id cursors tell what
is new. Reading the tables (rather than listening inside this process) sees the work of every
process sharing the database: a separate `mediahooks worker`, another `serve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store.schema import DbRow, attempts, deliveries, events, webhooks

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
    for row in await _after(conn, events, cursor.event, account):
        cursor.event = row.id
        if row.hook_type == "media":
            data = {"id": row.ordering_key, "event": row.event, "stream": row.stream_name}
            out.append(("asset", data))
        elif row.hook_type == "feeds":
            out.append(("stream", {"stream": row.stream_name, "event": row.event}))
    for row in await _after(conn, deliveries, cursor.delivery, account):
        cursor.delivery = row.id
        out.append(("delivery", {"webhook": row.webhook_id, "delivery": row.id, "new": True}))
    for row in await _after(conn, attempts, cursor.attempt, account):
        cursor.attempt = row.id
        data = {
            "webhook": row.webhook_id,
            "delivery": row.delivery_id,
            "statusCode": row.status_code,
            "errorKind": row.error_kind,
        }
        out.append(("delivery", data))
    return out


async def _after(conn: AsyncConnection, table: Table, after: int, account: str) -> list[DbRow]:
    """The account's rows of ``table`` with an id above ``after``, oldest first."""
    columns = [table.c[name] for name in _COLUMNS[table.name]]
    query = select(table.c.id, *columns)
    if table is events:
        query = query.where(events.c.account_id == account)
    else:  # deliveries and attempts belong to the account through their webhook
        query = query.join(webhooks, webhooks.c.id == table.c.webhook_id)
        query = query.where(webhooks.c.account_id == account)
    query = query.where(table.c.id > after).order_by(table.c.id).limit(BATCH)
    return list((await conn.execute(query)).all())


_COLUMNS = {
    "events": ("hook_type", "event", "ordering_key", "stream_name"),
    "deliveries": ("webhook_id",),
    "attempts": ("delivery_id", "webhook_id", "status_code", "error_kind"),
}
