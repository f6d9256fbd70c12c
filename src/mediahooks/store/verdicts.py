"""Writing down what attempts did: each attempt into the log, each verdict into its delivery,
webhooks that keep failing disabled, in one transaction per batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    String,
    Text,
    bindparam,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store.claims import NOW, OWNER, PENDING, PENDING_SQL, id_list, one_of
from mediahooks.store.db import mark_wake
from mediahooks.store.postgres import PgStatement
from mediahooks.store.schema import attempts, deliveries, webhooks
from mediahooks.store.sqlite import SqliteStatement


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
            deliveries.c.status == PENDING_SQL,
            deliveries.c.lease_owner == OWNER,
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
            updated_at=NOW,
        )
    )


def _healed_query(dialect: str) -> Any:
    """Webhooks that answered well are no longer failing."""
    return (
        update(webhooks)
        .where(one_of(webhooks.c.id, "b_healthy", dialect), webhooks.c.failing_since.is_not(None))
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
    .values(failing_since=func.coalesce(webhooks.c.failing_since, NOW))
)
_FAILED_TOO_LONG = (
    update(webhooks)
    .where(
        webhooks.c.id.in_(_webhook_ids),
        webhooks.c.failing_since <= bindparam("b_since", type_=BigInteger),
        or_(webhooks.c.disabled_until.is_(None), webhooks.c.disabled_until <= NOW),
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
            _SQLITE_HEALED.rows(conn, {"b_healthy": id_list(sorted(healthy), False)})
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


# One encoder: `json.dumps` with options builds a new one on every call.
_compact = json.JSONEncoder(separators=(",", ":"))


def headers_json(headers: dict[str, str]) -> str:
    return _compact.encode(headers)
