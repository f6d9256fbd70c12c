"""Forgetting old delivery history: finished deliveries with their attempts, once both their
event and their last change are older than the retention period, then the events no delivery
refers to any more.

A pending delivery is work, not history: it and its event are kept however old they are.

Neither table has an index on its creation time, and none is added (every emit would pay for
it): ids grow with time, so everything created before the cutoff lies below the first id created
after it. That id is found once per sweep, walking the primary key over the old rows; batches
then go through them in id order.
"""

from __future__ import annotations

from sqlalchemy import Table, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store.schema import attempts, deliveries, events


async def first_id_since(conn: AsyncConnection, table: Table, cutoff: int) -> int:
    """The first id of ``table`` created at or after ``cutoff`` (epoch ms), or one past the last
    id: every row below it is older than the cutoff."""
    first = await conn.scalar(
        select(table.c.id).where(table.c.created_at >= cutoff).order_by(table.c.id).limit(1)
    )
    if first is not None:
        return int(first)
    return int(await conn.scalar(select(func.max(table.c.id))) or 0) + 1


# One batch's outcome: how many rows went, and the id the next batch starts after (None: the
# walk is over).
Batch = tuple[int, int | None]


async def forget_deliveries(
    conn: AsyncConnection, after: int, below: int, limit: int, *, unchanged_since: int
) -> Batch:
    """Delete the first ``limit`` finished deliveries with ids between ``after`` and ``below``
    that have not changed since ``unchanged_since``, and their attempts.

    A delivery resent or cancelled lately is kept, however old its event: a resend's history
    is fresh, and an attempt in flight when its webhook was deleted is still to be logged.
    """
    finished = (
        select(deliveries.c.id)
        .where(
            deliveries.c.id > after,
            deliveries.c.id < below,
            deliveries.c.status != "pending",
            deliveries.c.updated_at < unchanged_since,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
        # PostgreSQL: a resend queued meanwhile waits for this transaction, then finds nothing
        # to resend; the status is checked again on the locked row. Concurrent sweepers split
        # the rows between them.
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.execute(finished)).scalars())
    if ids:
        await conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(ids)))
        await conn.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
    return len(ids), ids[-1] if len(ids) == limit else None


async def forget_events(conn: AsyncConnection, after: int, below: int, limit: int) -> Batch:
    """Of the next ``limit`` events with ids between ``after`` and ``below``, delete those no
    delivery refers to. (Deliveries are only ever added with their event, never later.)

    A window of events, then a look-up of each one's deliveries: asked for "the first events
    without deliveries", PostgreSQL would read every delivery to answer.
    """
    window = (
        select(events.c.id)
        .where(events.c.id > after, events.c.id < below)
        .order_by(events.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.execute(window)).scalars())
    if not ids:
        return 0, None
    unreferenced = delete(events).where(
        events.c.id.in_(ids), ~exists().where(deliveries.c.event_id == events.c.id)
    )
    forgotten = (await conn.execute(unreferenced)).rowcount
    return forgotten, ids[-1] if len(ids) == limit else None
