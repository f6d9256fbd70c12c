"""The transactional outbox: an event's exact bytes and one delivery per matching webhook.

Call `emit` inside the transaction that makes the state change; both commit or neither does.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import events
from mediahooks.clock import now_ms
from mediahooks.store import webhooks
from mediahooks.store.db import SqliteStatement, mark_notified, mark_wake, pg_notify
from mediahooks.store.schema import deliveries
from mediahooks.store.schema import events as events_table
from mediahooks.store.schema import webhooks as webhooks_table


@dataclass(frozen=True)
class Emitted:
    event_id: int
    msg_id: str
    body: bytes
    webhook_ids: list[int]


# A filter is the webhook owner's regular expression, run in the process that serves everyone:
# one with catastrophic backtracking ("(a|aa)+$") may take seconds on a short name. The `regex`
# engine can stop a search; one that runs out of time counts as not matching.
FILTER_SECONDS = 0.01
log = logging.getLogger("mediahooks.outbox")


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern)
    except regex.error:
        return None  # saved before validation existed: such a filter matches nothing


def filter_matches(pattern: str | None, stream_name: str) -> bool:
    """A webhook's `filter` is a regex searched in the event's stream name; none matches all."""
    if not pattern:
        return True
    compiled = _compiled(pattern)
    if compiled is None:
        return False
    try:
        return compiled.search(stream_name, timeout=FILTER_SECONDS) is not None
    except TimeoutError:
        log.warning(
            "filter %r took too long on stream %r: treated as no match", pattern, stream_name
        )
        return False


def new_msg_id() -> str:
    return "msg_" + uuid.uuid4().hex


_EVENT_COLUMNS = (
    "msg_id",
    "account_id",
    "hook_type",
    "event",
    "ordering_key",
    "stream_name",
    "body",
    "created_at",
)
_QUEUED_COLUMNS = (
    "event_id",
    "webhook_id",
    "ordering_key",
    "status",
    "tries",
    "attempt_count",
    "next_attempt_at",
    "created_at",
    "updated_at",
)


def _pg_event_and_subscribers(flag: str) -> Select[Any]:
    """PostgreSQL: insert the event and list its subscribers in one round trip."""
    new_event = (
        insert(events_table)
        .values({c: bindparam(c) for c in _EVENT_COLUMNS})
        .returning(events_table.c.id)
        .cte("new_event")
    )
    hooks = webhooks_table
    subscribed = webhooks.subscribing(bindparam("account_id"), flag)
    return (
        select(new_event.c.id, hooks.c.id, hooks.c.filter)
        .select_from(new_event.outerjoin(hooks, subscribed))
        .order_by(hooks.c.id)
    )


_PG_EMIT = {hook_type: _pg_event_and_subscribers(f) for hook_type, f in webhooks.TYPE_FLAGS.items()}
# SQLite: the same work in three statements run straight on the driver (see SqliteStatement).
_SQLITE_INSERT_EVENT = SqliteStatement(
    insert(events_table).returning(events_table.c.id), _EVENT_COLUMNS
)
_SQLITE_SUBSCRIBERS = {
    hook_type: SqliteStatement(webhooks.subscribers_query(flag))
    for hook_type, flag in webhooks.TYPE_FLAGS.items()
}
_SQLITE_QUEUE = SqliteStatement(insert(deliveries), _QUEUED_COLUMNS)
_now = bindparam("q_now", type_=BigInteger)
# PostgreSQL: one delivery per listed webhook and the NOTIFY of their dispatchers, one round trip.
_PG_QUEUE = select(pg_notify()).add_cte(
    insert(deliveries)
    .from_select(
        _QUEUED_COLUMNS,
        select(
            bindparam("q_event", type_=BigInteger),
            func.unnest(bindparam("q_webhooks", type_=ARRAY(BigInteger))),
            bindparam("q_key", type_=String),
            literal("pending"),
            literal(0, Integer),
            literal(0, Integer),
            _now,
            _now,
            _now,
        ),
    )
    .cte("queued")
)


async def emit(
    conn: AsyncConnection,
    account_id: str,
    hook: events.Hook,
    *,
    ignore_filters: bool = False,
    only: int | None = None,
) -> Emitted:
    """Store ``hook`` and queue it for every live webhook of the account that takes its type
    (or, with ``only``, for that webhook if it takes the type: a test sent from its page)."""
    now = now_ms()
    body = events.encode(hook)
    msg_id = new_msg_id()
    event = {
        "msg_id": msg_id,
        "account_id": account_id,
        "hook_type": hook.type,
        "event": hook.event,
        "ordering_key": hook.ordering_key,
        "stream_name": hook.stream_name,
        "body": body,
        "created_at": now,
    }
    is_postgres = conn.dialect.name == "postgresql"
    if is_postgres:
        rows = (await conn.execute(_PG_EMIT[hook.type], event)).all()
        event_id = rows[0][0]
        subscribers = [(webhook_id, pattern) for _, webhook_id, pattern in rows if webhook_id]
    else:
        event_id = _SQLITE_INSERT_EVENT.rows(conn, event)[0][0]
        subscribers = _SQLITE_SUBSCRIBERS[hook.type].rows(conn, {"account_id": account_id})
    targets = [
        webhook_id
        for webhook_id, pattern in subscribers
        if only in (None, webhook_id)
        and (ignore_filters or filter_matches(pattern, hook.stream_name))
    ]
    if targets and is_postgres:
        queued = {"q_event": event_id, "q_webhooks": targets, "q_key": hook.ordering_key}
        await conn.execute(_PG_QUEUE, dict(queued, q_now=now))
        mark_notified(conn)
    elif targets:
        _SQLITE_QUEUE.many(
            conn,
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
