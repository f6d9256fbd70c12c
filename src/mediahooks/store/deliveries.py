"""Named queries for deliveries: claiming with leases, recording attempts, the log and replay.

Ordering rule: a delivery is claimable only while no earlier delivery with the same webhook and
ordering key (the media asset) is still pending. Different assets and different webhooks never
wait on each other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    String,
    Text,
    and_,
    any_,
    bindparam,
    column,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnClause

from mediahooks.store.db import PgStatement, SqliteStatement, mark_wake
from mediahooks.store.paging import keyset
from mediahooks.store.schema import DbRow, attempts, deliveries, events, webhooks
from mediahooks.store.webhooks import signing_secrets

PENDING = "pending"
# Written into the SQL rather than bound: PostgreSQL's generic plans use the partial indexes
# (`WHERE status = 'pending'`) only for a predicate they can see.
_pending: ColumnClause[str] = literal_column("'pending'")


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


@dataclass(frozen=True)
class Result:
    """What one attempt did to its delivery; the dispatcher decides, `record` writes."""

    delivery_id: int
    webhook_id: int
    attempt: dict[str, Any]  # a row of `attempts`
    status: str  # pending (retry later) | succeeded | failed
    tries: int
    next_attempt_at: int
    last_status: int | None
    last_error: str | None
    webhook_ok: bool
    disable_reason: str | None  # set: disable the webhook now (410 Gone)


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
_now = bindparam("b_now", type_=BigInteger)
_owner = bindparam("b_owner", type_=String)


def _room_query() -> Any:
    live = and_(
        deliveries.c.webhook_id == webhooks.c.id,
        deliveries.c.lease_until > _now,
        deliveries.c.status == _pending,
        deliveries.c.lease_owner != _owner,
    )
    return (
        select(webhooks.c.id, func.count(deliveries.c.id))
        .select_from(webhooks.outerjoin(deliveries, live))
        .where(*_takes_deliveries(_now))
        .group_by(webhooks.c.id)
    )


def _one_of(column: Any, name: str, dialect: str) -> Any:
    """``column`` is one of the ids passed as ``:name``: an array on PostgreSQL, a JSON array
    on SQLite (see `_ids`). Either way the statement text is the same for any number of ids, so
    it is compiled (and prepared) once."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(BigInteger)))
    listed = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))


def _ids(values: list[int], is_postgres: bool) -> Any:
    return values if is_postgres else json.dumps(values)


def _open_webhooks(dialect: str) -> Any:
    # Each statement re-reads the webhooks: a verdict committed between two of them (a 410
    # disabling the webhook, freeing its lease) must not let a delivery through.
    return select(webhooks.c.id).where(
        _one_of(webhooks.c.id, "b_room", dialect), *_takes_deliveries(_now)
    )


def _is_head(delivery: Any) -> Any:
    """No earlier delivery of the same webhook and ordering key is still pending."""
    earlier = deliveries.alias("earlier")
    return ~exists().where(
        earlier.c.webhook_id == delivery.c.webhook_id,
        earlier.c.ordering_key == delivery.c.ordering_key,
        earlier.c.status == _pending,
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
            deliveries.c.status == _pending,
            deliveries.c.next_attempt_at <= _now,
            _free(_now),
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
            deliveries.c.status == _pending,
            deliveries.c.next_attempt_at <= _now,
            _free(_now),
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
            _one_of(deliveries.c.id, "b_chosen", dialect),
            deliveries.c.status == _pending,
            _free(_now),
            deliveries.c.webhook_id.in_(_open_webhooks(dialect)),
        )
        .with_for_update(skip_locked=True)
    )
    return (
        update(deliveries)
        .where(deliveries.c.id.in_(lockable))
        .values(lease_owner=_owner, lease_until=bindparam("b_until", type_=BigInteger))
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
        .where(_one_of(deliveries.c.id, "b_ids", "sqlite"))
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
        params = {"b_room": _ids(list(room), False), "b_window": limit * 4}
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
        "b_chosen": _ids(chosen, is_postgres),
        "b_now": now,
        "b_room": _ids(list(room), is_postgres),
        "b_owner": owner,
        "b_until": now + lease_ms,
    }
    if is_postgres:
        rows = sorted(await _PG_LEASE_AND_LOAD.rows(conn, lease), key=lambda r: r[0])
    else:
        ids = [delivery_id for (delivery_id,) in _SQLITE_LEASE.rows(conn, lease)]
        if not ids:
            return []
        rows = _SQLITE_LOAD.rows(conn, {"b_ids": _ids(ids, False)})
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
    deliveries.c.status == _pending, _free(_now)
)


async def next_due(conn: AsyncConnection, now: int) -> int | None:
    """When the earliest pending delivery not yet leased falls due (epoch ms)."""
    due: int | None = (await conn.execute(_NEXT_DUE, {"b_now": now})).scalar()
    return due


_ATTEMPT_FIELDS = {c.name: c.type for c in attempts.c if c.name != "id"}
# What an attempt changes in its delivery row (see `_verdict`).
_VERDICT_FIELDS = {
    "id": BigInteger(),
    "status": String(),
    "tries": Integer(),
    "next": BigInteger(),
    "last_status": Integer(),
    "last_error": Text(),
    "completed": BigInteger(),
}


def _verdict_query(value: Callable[[str], Any]) -> Any:
    """Write a verdict, unless another worker took the lease over; ``value`` gives each field
    of `_VERDICT_FIELDS` (a parameter, or a column of a batch)."""
    return (
        update(deliveries)
        .where(
            deliveries.c.id == value("id"),
            deliveries.c.status == _pending,
            deliveries.c.lease_owner == _owner,
        )
        .values(
            status=value("status"),
            tries=value("tries"),
            attempt_count=deliveries.c.attempt_count + 1,
            next_attempt_at=value("next"),
            last_status=value("last_status"),
            last_error=value("last_error"),
            completed_at=value("completed"),
            lease_owner=None,
            lease_until=None,
            updated_at=_now,
        )
    )


def _healed_query(dialect: str) -> Any:
    """Webhooks that answered well are no longer failing."""
    return (
        update(webhooks)
        .where(_one_of(webhooks.c.id, "b_healthy", dialect), webhooks.c.failing_since.is_not(None))
        .values(failing_since=None)
    )


# SQLite: a batch's statements run straight on the driver (see SqliteStatement).
_SQLITE_ATTEMPTS = SqliteStatement(insert(attempts), list(_ATTEMPT_FIELDS))
_SQLITE_VERDICT = SqliteStatement(_verdict_query(lambda name: bindparam(f"b_{name}")))
_SQLITE_HEALED = SqliteStatement(_healed_query("sqlite"))


def _batch(columns: dict[str, Any]) -> Any:
    """PostgreSQL: a batch passed as one array per column, as a table (``unnest``)."""
    return (
        func.unnest(*[bindparam(f"u_{n}", type_=ARRAY(t)) for n, t in columns.items()])
        .table_valued(*[column(n, t) for n, t in columns.items()])
        .render_derived(name="batch")
    )


def _pg_record_query() -> Any:
    """PostgreSQL: a batch's attempts, verdicts and recovered webhooks in one statement.

    With one execution per attempt and per verdict (`executemany`), the server's time went to
    starting statements; arrays make it three statements' work for any batch size.
    """
    tried = _batch(_ATTEMPT_FIELDS)
    verdict = _batch(_VERDICT_FIELDS)
    logged = insert(attempts).from_select(
        list(_ATTEMPT_FIELDS), select(*[tried.c[n] for n in _ATTEMPT_FIELDS])
    )
    return (
        select(literal(1))
        .add_cte(logged.cte("logged"))
        .add_cte(_verdict_query(lambda name: verdict.c[name]).cte("judged"))
        .add_cte(_healed_query("postgresql").cte("healed"))
    )


_PG_RECORD = PgStatement(_pg_record_query())

_webhook_ids: Any = bindparam("b_webhooks", expanding=True)
_FAILING = (
    update(webhooks)
    .where(webhooks.c.id.in_(_webhook_ids))
    .values(failing_since=func.coalesce(webhooks.c.failing_since, _now))
)
_FAILED_TOO_LONG = (
    update(webhooks)
    .where(
        webhooks.c.id.in_(_webhook_ids),
        webhooks.c.failing_since <= bindparam("b_since", type_=BigInteger),
        or_(webhooks.c.disabled_until.is_(None), webhooks.c.disabled_until <= _now),
    )
    .values(
        disabled_until=bindparam("b_until", type_=BigInteger),
        disabled_reason="every delivery failed for too long; re-enable it once the "
        "endpoint works again",
    )
)


def _verdict(result: Result, now: int) -> dict[str, Any]:
    """What one attempt changes in its delivery row (the fields of `_VERDICT_FIELDS`)."""
    return {
        "id": result.delivery_id,
        "status": result.status,
        "tries": result.tries,
        "next": result.next_attempt_at,
        "last_status": result.last_status,
        "last_error": result.last_error,
        "completed": None if result.status == PENDING else now,
    }


async def record(
    conn: AsyncConnection,
    owner: str,
    results: list[Result],
    now: int,
    disable_for_ms: int,
    disable_after_ms: int,
) -> None:
    """Write a batch of attempts and their verdicts in one transaction.

    A delivery whose lease another worker took over keeps that worker's verdict; the attempt
    is logged all the same.
    """
    if not results:
        return
    # Delivery rows in id order, then webhook rows: every writer locks in this order.
    results = sorted(results, key=lambda r: r.delivery_id)
    verdicts = [_verdict(r, now) for r in results]
    healthy = {r.webhook_id for r in results if r.webhook_ok}
    if conn.dialect.name == "postgresql":
        batch: dict[str, Any] = {f"u_{n}": [r.attempt[n] for r in results] for n in _ATTEMPT_FIELDS}
        batch |= {f"u_{n}": [v[n] for v in verdicts] for n in _VERDICT_FIELDS}
        batch |= {"b_owner": owner, "b_now": now, "b_healthy": sorted(healthy)}
        await _PG_RECORD.rows(conn, batch)
    else:
        _SQLITE_ATTEMPTS.many(conn, [r.attempt for r in results])
        fixed = {"b_owner": owner, "b_now": now}
        _SQLITE_VERDICT.many(conn, [{f"b_{n}": x for n, x in v.items()} | fixed for v in verdicts])
        if healthy:
            _SQLITE_HEALED.rows(conn, {"b_healthy": _ids(sorted(healthy), False)})
    failing = {r.webhook_id for r in results if not r.webhook_ok} - healthy
    if failing:
        await conn.execute(_FAILING, {"b_webhooks": sorted(failing), "b_now": now})
        await conn.execute(
            _FAILED_TOO_LONG,
            {
                "b_webhooks": sorted(failing),
                "b_now": now,
                "b_since": now - disable_after_ms,
                "b_until": now + disable_for_ms,
            },
        )
    for r in results:
        if r.disable_reason:
            await conn.execute(
                update(webhooks)
                .where(webhooks.c.id == r.webhook_id)
                .values(disabled_until=now + disable_for_ms, disabled_reason=r.disable_reason)
            )
    # A finished delivery may be the head of a chain: its successor is due now.
    mark_wake(conn)


# --- the attempt log and replay ---------------------------------------------------------------

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


async def renew_leases(conn: AsyncConnection, owner: str, until: int) -> None:
    """Keep this worker's leases alive while its attempts run.

    Rows another transaction holds (a batch of verdicts being written) are skipped rather than
    waited for: waiting on rows in another order than that writer is how deadlocks start.
    """
    mine = (
        select(deliveries.c.id)
        .where(deliveries.c.lease_owner == owner, deliveries.c.status == _pending)
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
            ).where(deliveries.c.status == _pending)
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


# One encoder: `json.dumps` with options builds a new one on every call.
_compact = json.JSONEncoder(separators=(",", ":"))


def headers_json(headers: dict[str, str]) -> str:
    return _compact.encode(headers)
