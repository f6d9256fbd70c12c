"""The transactional outbox: an event's exact bytes and one delivery per matching webhook.

Call `emit` inside the transaction that makes the state change; both commit or neither does.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import events
from mediahooks.clock import now_ms
from mediahooks.store import webhooks
from mediahooks.store.db import mark_wake
from mediahooks.store.schema import deliveries
from mediahooks.store.schema import events as events_table


@dataclass(frozen=True)
class Emitted:
    event_id: int
    msg_id: str
    body: bytes
    webhook_ids: list[int]


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # saved before validation existed: such a filter matches nothing


def filter_matches(pattern: str | None, stream_name: str) -> bool:
    """A webhook's `filter` is a regex searched in the event's stream name; none matches all."""
    if not pattern:
        return True
    compiled = _compiled(pattern)
    return compiled is not None and compiled.search(stream_name) is not None


def new_msg_id() -> str:
    return "msg_" + uuid.uuid4().hex


async def emit(
    conn: AsyncConnection, account_id: str, hook: events.Hook, *, ignore_filters: bool = False
) -> Emitted:
    """Store ``hook`` and queue it for every live webhook of the account that takes its type."""
    now = now_ms()
    body = events.encode(hook)
    msg_id = new_msg_id()
    event_id = (
        await conn.execute(
            insert(events_table)
            .values(
                msg_id=msg_id,
                account_id=account_id,
                hook_type=hook.type,
                event=hook.event,
                ordering_key=hook.ordering_key,
                stream_name=hook.stream_name,
                body=body,
                created_at=now,
            )
            .returning(events_table.c.id)
        )
    ).scalar_one()
    targets = [
        row.id
        for row in await webhooks.subscribers(conn, account_id, hook.type)
        if ignore_filters or filter_matches(row.filter, hook.stream_name)
    ]
    if targets:
        await conn.execute(
            insert(deliveries),
            [
                {
                    "event_id": event_id,
                    "webhook_id": webhook_id,
                    "ordering_key": hook.ordering_key,
                    "status": "pending",
                    "tries": 0,
                    "attempt_count": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for webhook_id in targets
            ],
        )
        mark_wake(conn)
    return Emitted(event_id=event_id, msg_id=msg_id, body=body, webhook_ids=targets)
