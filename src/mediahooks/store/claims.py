"""Claiming due deliveries with leases: the dispatcher's hot path, and what keeps it fast (the
leases renewed while attempts run, the statistics PostgreSQL plans the claim with).

Ordering rule: a delivery is claimable only while no earlier delivery with the same webhook and
ordering key (the media asset) is still pending. Different assets and different webhooks never
wait on each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnClause

from mediahooks.store.postgres import PgStatement
from mediahooks.store.schema import deliveries, events, webhooks
from mediahooks.store.sqlite import SqliteStatement
from mediahooks.store.webhooks import signing_secrets

PENDING = "pending"
# Written into the SQL rather than bound: PostgreSQL's generic plans use the partial indexes
# (`WHERE status = 'pending'`) only for a predicate they can see.
PENDING_SQL: ColumnClause[str] = literal_column("'pending'")


@dataclass(frozen=True)
class Claimed:
    """A leased delivery with everything one attempt needs."""

    id: int
    webhook_id: int
    msg_id: str
    body: bytes
    url: str
    secrets: list[str]
    tries: int
    created_at: int
    # Headers of the event beside the signatures (a thumbnail's `Content-Type`...); None: JSON.
    headers: dict[str, str] | None = None


def _takes_deliveries(now: Any) -> tuple[Any, ...]:
    """A webhook that is neither deleted nor disabled."""
    return (
        webhooks.c.deleted_at.is_(None),
        or_(webhooks.c.disabled_until.is_(None), webhooks.c.disabled_until <= now),
    )


def _free(now: Any) -> Any:
    return or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until <= now)


# The claim's statements are built once, with parameters: building a statement costs more than
# running it. `:now` is the claim's clock, `:room` the webhooks with capacity left.
NOW = bindparam("b_now", type_=BigInteger)
OWNER = bindparam("b_owner", type_=String)


def _room_query() -> Any:
    live = and_(
        deliveries.c.webhook_id == webhooks.c.id,
        deliveries.c.lease_until > NOW,
        deliveries.c.status == PENDING_SQL,
        deliveries.c.lease_owner != OWNER,
    )
    return (
        select(webhooks.c.id, func.count(deliveries.c.id))
        .select_from(webhooks.outerjoin(deliveries, live))
        .where(*_takes_deliveries(NOW))
        .group_by(webhooks.c.id)
    )


def one_of(column: Any, name: str, dialect: str) -> Any:
    """``column`` is one of the ids passed as ``:name``: an array on PostgreSQL, a JSON array
    on SQLite (see `id_list`). Either way the statement text is the same for any number of ids, so
    it is compiled (and prepared) once."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(BigInteger)))
    listed = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))


def id_list(values: list[int], is_postgres: bool) -> Any:
    return values if is_postgres else json.dumps(values)


def _open_webhooks(dialect: str) -> Any:
    # Each statement re-reads the webhooks: a verdict committed between two of them (a 410
    # disabling the webhook, freeing its lease) must not let a delivery through.
    return select(webhooks.c.id).where(
        one_of(webhooks.c.id, "b_room", dialect), *_takes_deliveries(NOW)
    )


def _is_head(delivery: Any) -> Any:
    """No earlier delivery of the same webhook and ordering key is still pending."""
    earlier = deliveries.alias("earlier")
    return ~exists().where(
        earlier.c.webhook_id == delivery.c.webhook_id,
        earlier.c.ordering_key == delivery.c.ordering_key,
        earlier.c.status == PENDING_SQL,
        earlier.c.id < delivery.c.id,
    )


def _due_query(dialect: str) -> Any:
    # Walk the due index in order and stop after a few batches' worth of claimable rows, so a
    # claim costs the same with a hundred or a hundred thousand deliveries queued. Rows that
    # cannot be claimed (ordering, a full or disabled webhook) are skipped, never counted, so
    # they cannot crowd other webhooks out of the window.
    return (
        select(deliveries.c.id, deliveries.c.webhook_id)
        .where(
            deliveries.c.status == PENDING_SQL,
            deliveries.c.next_attempt_at <= NOW,
            _free(NOW),
            # `+ 0`: without it SQLite (which keeps no statistics) looks the webhooks up in
            # their index of every delivery they ever had, history included, and sorts all of
            # them: each claim would slow down as history grows. The due index reads only the
            # pending ones, already in order.
            (deliveries.c.webhook_id + 0).in_(_open_webhooks(dialect)),
            _is_head(deliveries),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(bindparam("b_window", type_=Integer))
    )


def _pg_due_query() -> Any:
    """PostgreSQL: the same choice, walked webhook by webhook.

    PostgreSQL will not walk one index in order and stop at the LIMIT when conditions on other
    rows (the head check, the webhook's room) sit between: it checks every due row, then sorts,
    so a claim under a backlog of 15,000 took 50 ms. Here each webhook with room walks its own
    pending deliveries in due order (`ix_deliveries_webhook_due`) and stops after as many heads
    as it has room for: a claim reads about what it takes. (The plan relies on statistics:
    see `keep_statistics`.)
    """
    rooms = (
        func.unnest(
            bindparam("b_webhooks", type_=ARRAY(BigInteger)),
            bindparam("b_rooms", type_=ARRAY(Integer)),
        )
        .table_valued(column("webhook_id", BigInteger), column("room", Integer))
        .render_derived(name="rooms")
    )
    heads = (
        select(deliveries.c.id, deliveries.c.webhook_id, deliveries.c.next_attempt_at)
        .where(
            deliveries.c.webhook_id == rooms.c.webhook_id,
            deliveries.c.status == PENDING_SQL,
            deliveries.c.next_attempt_at <= NOW,
            _free(NOW),
            _is_head(deliveries),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(rooms.c.room)
        .lateral("heads")
    )
    return (
        select(heads.c.id, heads.c.webhook_id)
        .select_from(rooms.join(heads, true()))
        .order_by(heads.c.next_attempt_at, heads.c.id)
        .limit(bindparam("b_window", type_=Integer))
    )


def _lease_query(dialect: str) -> Any:
    # The outer conditions are re-checked on the locked row version (PostgreSQL), so two
    # workers racing for one row cannot both lease it.
    lockable = (
        select(deliveries.c.id)
        .where(
            one_of(deliveries.c.id, "b_chosen", dialect),
            deliveries.c.status == PENDING_SQL,
            _free(NOW),
            deliveries.c.webhook_id.in_(_open_webhooks(dialect)),
        )
        .with_for_update(skip_locked=True)
    )
    return (
        update(deliveries)
        .where(deliveries.c.id.in_(lockable))
        .values(lease_owner=OWNER, lease_until=bindparam("b_until", type_=BigInteger))
        .returning(deliveries.c.id)
    )


# What one attempt needs, beside the delivery's own columns.
_ATTEMPT_COLUMNS = (
    deliveries.c.id,
    deliveries.c.webhook_id,
    deliveries.c.tries,
    deliveries.c.created_at,
    events.c.msg_id,
    events.c.body,
    events.c.headers,
    webhooks.c.url,
    webhooks.c.secret,
    webhooks.c.previous_secret,
    webhooks.c.previous_secret_until,
)


def _load_query() -> Any:
    """SQLite: what the leased deliveries' attempts need (its UPDATE returns only its own
    table's columns)."""
    return (
        select(*_ATTEMPT_COLUMNS)
        .join(events, events.c.id == deliveries.c.event_id)
        .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
        .where(one_of(deliveries.c.id, "b_ids", "sqlite"))
        .order_by(deliveries.c.id)
    )


def _lease_and_load_query() -> Any:
    """PostgreSQL: lease and read what the attempts need in one round trip (UPDATE ... FROM
    ... RETURNING; SQLite returns only the updated table's columns)."""
    return (
        _lease_query("postgresql")
        .where(
            events.c.id == deliveries.c.event_id,
            webhooks.c.id == deliveries.c.webhook_id,
        )
        .returning(*_ATTEMPT_COLUMNS[1:])
    )


# Run straight on the driver (see `SqliteStatement`, `PgStatement`): claims come by the
# hundred a second, and SQLAlchemy's execution path cost more than the statements.
_SQLITE_ROOM = SqliteStatement(_room_query())
_SQLITE_DUE = SqliteStatement(_due_query("sqlite"))
_SQLITE_LEASE = SqliteStatement(_lease_query("sqlite"))
_SQLITE_LOAD = SqliteStatement(_load_query())
_PG_ROOM = PgStatement(_room_query())
_PG_DUE = PgStatement(_pg_due_query())
_PG_LEASE_AND_LOAD = PgStatement(_lease_and_load_query())


async def claim(
    conn: AsyncConnection,
    owner: str,
    now: int,
    limit: int,
    per_webhook: int,
    lease_ms: int,
    sending: Mapping[int, int],
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries, at most ``per_webhook`` in flight per webhook.

    ``sending`` counts this worker's attempts in flight per webhook; its other leases (attempts
    answered, not yet written down) no longer take a webhook's capacity.
    """
    is_postgres = conn.dialect.name == "postgresql"
    params = {"b_now": now, "b_owner": owner}
    counts = await _PG_ROOM.rows(conn, params) if is_postgres else _SQLITE_ROOM.rows(conn, params)
    room = {webhook_id: per_webhook - n - sending.get(webhook_id, 0) for webhook_id, n in counts}
    room = {webhook_id: free for webhook_id, free in room.items() if free > 0}
    if not room:
        return []
    if is_postgres:
        params = {"b_webhooks": list(room), "b_rooms": list(room.values()), "b_window": limit}
        due = await _PG_DUE.rows(conn, params | {"b_now": now})
    else:
        params = {"b_room": id_list(list(room), False), "b_window": limit * 4}
        due = _SQLITE_DUE.rows(conn, params | {"b_now": now})
    chosen = []
    for delivery_id, webhook_id in due:
        if room[webhook_id] > 0:
            room[webhook_id] -= 1
            chosen.append(delivery_id)
            if len(chosen) == limit:
                break
    if not chosen:
        return []
    lease = {
        "b_chosen": id_list(chosen, is_postgres),
        "b_now": now,
        "b_room": id_list(list(room), is_postgres),
        "b_owner": owner,
        "b_until": now + lease_ms,
    }
    if is_postgres:
        rows = sorted(await _PG_LEASE_AND_LOAD.rows(conn, lease), key=lambda r: r[0])
    else:
        ids = [delivery_id for (delivery_id,) in _SQLITE_LEASE.rows(conn, lease)]
        if not ids:
            return []
        rows = _SQLITE_LOAD.rows(conn, {"b_ids": id_list(ids, False)})
    claimed = []
    for row in rows:
        delivery_id, webhook_id, tries, created_at, msg_id, body, headers, url, *keys = row
        claimed.append(
            Claimed(
                id=delivery_id,
                webhook_id=webhook_id,
                msg_id=msg_id,
                body=bytes(body),
                url=url,
                secrets=signing_secrets(keys[0], keys[1], keys[2], now),
                tries=tries,
                created_at=created_at,
                headers=json.loads(headers) if headers else None,
            )
        )
    return claimed


_NEXT_DUE = select(func.min(deliveries.c.next_attempt_at)).where(
    deliveries.c.status == PENDING_SQL, _free(NOW)
)


async def next_due(conn: AsyncConnection, now: int) -> int | None:
    """When the earliest pending delivery not yet leased falls due (epoch ms)."""
    due: int | None = (await conn.execute(_NEXT_DUE, {"b_now": now})).scalar()
    return due


async def renew_leases(conn: AsyncConnection, owner: str, until: int) -> None:
    """Keep this worker's leases alive while its attempts run.

    Rows another transaction holds (a batch of verdicts being written) are skipped rather than
    waited for: waiting on rows in another order than that writer is how deadlocks start.
    """
    mine = (
        select(deliveries.c.id)
        .where(deliveries.c.lease_owner == owner, deliveries.c.status == PENDING_SQL)
        .with_for_update(skip_locked=True)
    )
    await conn.execute(
        update(deliveries).where(deliveries.c.id.in_(mine)).values(lease_until=until)
    )


async def backlog(conn: AsyncConnection, now: int) -> tuple[int, int | None]:
    """How many deliveries are pending, and since when the oldest due one has been due."""
    row = (
        await conn.execute(
            select(
                func.count(),
                func.min(deliveries.c.next_attempt_at).filter(deliveries.c.next_attempt_at <= now),
            ).where(deliveries.c.status == PENDING_SQL)
        )
    ).one()
    return int(row[0]), row[1]


# Autovacuum's own rule (50 rows plus a tenth of the table changed since the last ANALYZE).
_STATISTICS_STALE = text(
    "SELECT s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)"
    " FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
    " WHERE s.relid = 'deliveries'::regclass"
)


async def keep_statistics(conn: AsyncConnection) -> bool:
    """PostgreSQL: analyze `deliveries` when its statistics are stale; True if it did.

    The claim's plan depends on them: planned for an empty table, a claim under a backlog of
    15,000 deliveries read them all (50 ms instead of 0.5). Autovacuum would analyze too, but
    it may be off and looks only once a minute, while a burst fills the table in a second.
    """
    if not (await conn.execute(_STATISTICS_STALE)).scalar():
        return False
    await conn.execute(text("ANALYZE deliveries"))
    return True
