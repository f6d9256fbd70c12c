"""Named queries for subscribe tokens: what viewers present to watch protected streams."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.clock import now_ms
from mediahooks.store.paging import keyset
from mediahooks.store.schema import DbRow, subscribe_tokens

_live = subscribe_tokens.c.deleted_at.is_(None)


async def create(conn: AsyncConnection, account_id: str, values: dict[str, Any]) -> DbRow:
    now = now_ms()
    return (
        await conn.execute(
            subscribe_tokens.insert()
            .values(
                account_id=account_id,
                token=secrets.token_hex(32),
                created_at=now,
                updated_at=now,
                **values,
            )
            .returning(*subscribe_tokens.c)
        )
    ).one()


async def get(conn: AsyncConnection, account_id: str, token_id: int) -> DbRow | None:
    query = select(subscribe_tokens).where(
        subscribe_tokens.c.id == token_id, subscribe_tokens.c.account_id == account_id, _live
    )
    return (await conn.execute(query)).first()


async def by_token(conn: AsyncConnection, account_id: str, token: str) -> DbRow | None:
    query = select(subscribe_tokens).where(
        subscribe_tokens.c.token == token, subscribe_tokens.c.account_id == account_id, _live
    )
    return (await conn.execute(query)).first()


async def update_one(
    conn: AsyncConnection, account_id: str, token_id: int, values: dict[str, Any]
) -> DbRow | None:
    result = await conn.execute(
        update(subscribe_tokens)
        .where(
            subscribe_tokens.c.id == token_id, subscribe_tokens.c.account_id == account_id, _live
        )
        .values({**values, "updated_at": now_ms()})
        .returning(*subscribe_tokens.c)
    )
    return result.first()


async def delete(conn: AsyncConnection, account_id: str, token_id: int) -> bool:
    result = await conn.execute(
        update(subscribe_tokens)
        .where(
            subscribe_tokens.c.id == token_id, subscribe_tokens.c.account_id == account_id, _live
        )
        .values(deleted_at=now_ms())
    )
    return bool(result.rowcount)


async def page(
    conn: AsyncConnection, account_id: str, starting_id: int | None, count: int, descending: bool
) -> list[DbRow]:
    query = select(subscribe_tokens).where(subscribe_tokens.c.account_id == account_id, _live)
    query = keyset(query, subscribe_tokens.c.id, starting_id, count, descending)
    return list((await conn.execute(query)).all())
