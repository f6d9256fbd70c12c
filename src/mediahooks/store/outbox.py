"""The transactional outbox: an event's exact bytes and one delivery per matching webhook.

Call `emit` inside the transaction that makes the state change; both commit or neither does.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import events, patterns
from mediahooks.clock import now_ms
from mediahooks.store import webhooks
from mediahooks.store.db import mark_wake
from mediahooks.store.postgres import PgStatement
from mediahooks.store.schema import deliveries
from mediahooks.store.schema import events as events_table
from mediahooks.store.schema import webhooks as webhooks_table
from mediahooks.store.sqlite import SqliteStatement


@dataclass(frozen=True)
class Emitted:
    event_id: int
    msg_id: str
    body: bytes
    webhook_ids: list[int]


def filter_matches(pattern: str | None, stream_name: str) -> bool:
    """A webhook's `filter` is a regex searched in the event's stream name; none matches all.
    It runs with the time limit of every user pattern (`patterns`)."""
    if not pattern:
        return True
    return patterns.matches(pattern, stream_name, "search", "webhook filter")


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
    "headers",
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


def _pg_emit_query(flag: str) -> Select[Any]:
    """PostgreSQL, one round trip: insert the event, queue it for every subscriber without a
    filter, and list every subscriber. Filters are regular expressions of our own dialect
    (`filter_matches`), so the subscribers that have one are decided in Python and queued by
    `_PG_QUEUE`.

    ``:only`` (a webhook id or NULL) narrows the subscribers; ``:ignore_filters`` queues them
    all at once.
    """
    new_event = (
        insert(events_table)
        .values({c: bindparam(c) for c in _EVENT_COLUMNS})
        .returning(events_table.c.id)
        .cte("new_event")
    )
    hooks = webhooks_table
    only = bindparam("only", type_=BigInteger)
    direct = or_(hooks.c.filter.is_(None), bindparam("ignore_filters", type_=Boolean))
    subscribers = (
        select(hooks.c.id, hooks.c.filter, direct.label("direct"))
        .where(
            webhooks.subscribing(bindparam("account_id"), flag),
            or_(only.is_(None), hooks.c.id == only),
        )
        .cte("subscribers")
    )
    created = bindparam("created_at", type_=BigInteger)
    queued = (
        insert(deliveries)
        .from_select(
            _QUEUED_COLUMNS,
            select(
                new_event.c.id,
                subscribers.c.id,
                bindparam("ordering_key", type_=String),
                literal("pending"),
                literal(0, Integer),
                literal(0, Integer),
                created,
                created,
                created,
            ).where(subscribers.c.direct),
        )
        .cte("queued")
    )
    return (
        select(new_event.c.id, subscribers.c.id, subscribers.c.filter, subscribers.c.direct)
        .add_cte(queued)
        .select_from(new_event.outerjoin(subscribers, true()))
        .order_by(subscribers.c.id)
    )


_PG_EMIT = {kind: PgStatement(_pg_emit_query(flag)) for kind, flag in webhooks.TYPE_FLAGS.items()}
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
# PostgreSQL: one delivery per listed webhook, one round trip.
_PG_QUEUE = PgStatement(
    insert(deliveries).from_select(
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
)


async def emit(
    conn: AsyncConnection,
    account_id: str,
    hook: events.AnyHook,
    *,
    ignore_filters: bool = False,
    only: int | None = None,
) -> Emitted:
    """Store ``hook`` and queue it for every live webhook of the account that takes its type
    (or, with ``only``, for that webhook if it takes the type: a test sent from its page).

    A thumbnail is stored as its JPEG bytes with its own headers, and cancels the deliveries of
    the stream's older thumbnails that are still waiting: a picture superseded by a newer one
    is not worth retrying for hours, and dropping it unblocks the stream's ordering chain."""
    now = now_ms()
    if isinstance(hook, events.ImageHook):
        body, headers = hook.jpeg, json.dumps(hook.headers())
    else:
        body, headers = events.encode(hook), None
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
        "headers": headers,
    }
    emit_rows = _pg_emit if conn.dialect.name == "postgresql" else _sqlite_emit
    event_id, targets = await emit_rows(conn, hook, event, ignore_filters, only)
    if isinstance(hook, events.ImageHook):
        await _supersede(conn, hook.ordering_key, event_id, now)
    return Emitted(event_id=event_id, msg_id=msg_id, body=body, webhook_ids=targets)


async def _supersede(conn: AsyncConnection, key: str, event_id: int, now: int) -> None:
    """Cancel the waiting deliveries of older events of ``key`` (those not in an attempt)."""
    waiting = (
        select(deliveries.c.id)
        .where(
            deliveries.c.ordering_key == key,
            deliveries.c.status == "pending",
            deliveries.c.event_id < event_id,
            or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= now),
        )
        .order_by(deliveries.c.id)
        .with_for_update()
    )
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(waiting))
        .values(
            status="cancelled",
            completed_at=now,
            updated_at=now,
            lease_owner=None,
            lease_until=None,
            last_error="superseded by a newer thumbnail of the stream",
        )
    )


async def _sqlite_emit(
    conn: AsyncConnection,
    hook: events.AnyHook,
    event: dict[str, Any],
    ignore_filters: bool,
    only: int | None,
) -> tuple[int, list[int]]:
    """Insert the event, then one delivery per subscriber it is for; returns the event's id and
    those webhooks."""
    event_id = _SQLITE_INSERT_EVENT.rows(conn, event)[0][0]
    subscribers = _SQLITE_SUBSCRIBERS[hook.type].rows(conn, {"account_id": event["account_id"]})
    targets = [
        webhook_id
        for webhook_id, pattern in subscribers
        if only in (None, webhook_id)
        and (ignore_filters or filter_matches(pattern, hook.stream_name))
    ]
    if targets:
        now = event["created_at"]
        queued = {
            "event_id": event_id,
            "ordering_key": hook.ordering_key,
            "status": "pending",
            "tries": 0,
            "attempt_count": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        _SQLITE_QUEUE.many(conn, [dict(queued, webhook_id=w) for w in targets])
        mark_wake(conn)
    return event_id, targets


async def _pg_emit(
    conn: AsyncConnection,
    hook: events.AnyHook,
    event: dict[str, Any],
    ignore_filters: bool,
    only: int | None,
) -> tuple[int, list[int]]:
    """Run `_pg_emit_query`, then queue the filtered subscribers whose filter matches; returns the
    event's id and every webhook it was queued for."""
    params = dict(event, ignore_filters=ignore_filters, only=only)
    rows = await _PG_EMIT[hook.type].rows(conn, params)
    event_id = rows[0][0]
    queued = [webhook_id for _, webhook_id, _, direct in rows if direct]
    matching = [
        webhook_id
        for _, webhook_id, pattern, direct in rows
        if webhook_id is not None and not direct and filter_matches(pattern, hook.stream_name)
    ]
    if matching:
        params = {
            "q_event": event_id,
            "q_webhooks": matching,
            "q_key": hook.ordering_key,
            "q_now": event["created_at"],
        }
        await _PG_QUEUE.rows(conn, params)
    if queued or matching:
        mark_wake(conn)
    return event_id, sorted(queued + matching)
