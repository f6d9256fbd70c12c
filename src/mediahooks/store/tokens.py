"""Named queries for publish tokens. The `token` string is what a publisher presents; the
integer `id` is the `tokenId` of hooks and assets."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import patterns
from mediahooks.clock import now_ms
from mediahooks.store.paging import keyset
from mediahooks.store.schema import DbRow, publish_tokens

_live = publish_tokens.c.deleted_at.is_(None)


def new_token() -> str:
    return secrets.token_hex(32)


def allows(row: DbRow, stream_name: str) -> bool:
    """Whether the token may publish ``stream_name``: an exact name or a full regex match.

    A rule is the token owner's regex, run on every upload: it runs with the time limit of every
    user pattern (`patterns`), and one that runs out of time does not match."""
    for rule in json.loads(row.streams):
        name = rule.get("streamName", "")
        if rule.get("isRegex"):
            if patterns.matches(name, stream_name, "fullmatch", f"stream rule of token {row.id}"):
                return True
        elif name == stream_name:
            return True
    return False


async def create(conn: AsyncConnection, account_id: str, values: dict[str, Any]) -> DbRow:
    now = now_ms()
    return (
        await conn.execute(
            publish_tokens.insert()
            .values(
                account_id=account_id, token=new_token(), created_at=now, updated_at=now, **values
            )
            .returning(*publish_tokens.c)
        )
    ).one()


async def get(conn: AsyncConnection, account_id: str, token_id: int) -> DbRow | None:
    query = select(publish_tokens).where(
        publish_tokens.c.id == token_id, publish_tokens.c.account_id == account_id, _live
    )
    return (await conn.execute(query)).first()


async def without_clipping(conn: AsyncConnection, account_id: str, ids: set[int]) -> set[int]:
    """Those of the tokens ``ids`` that exist and do not allow clipping (one query)."""
    if not ids:
        return set()
    query = select(publish_tokens.c.id).where(
        publish_tokens.c.id.in_(ids),
        publish_tokens.c.account_id == account_id,
        publish_tokens.c.clip.is_(False),
        _live,
    )
    return set((await conn.execute(query)).scalars())


async def by_token(conn: AsyncConnection, token: str) -> DbRow | None:
    query = select(publish_tokens).where(publish_tokens.c.token == token, _live)
    return (await conn.execute(query)).first()


async def active(conn: AsyncConnection) -> list[DbRow]:
    """Every publish token not deleted, of every account (what the SRT door keeps at hand)."""
    return list((await conn.execute(select(publish_tokens).where(_live))).all())


async def update_one(
    conn: AsyncConnection, account_id: str, token_id: int, values: dict[str, Any]
) -> DbRow | None:
    result = await conn.execute(
        update(publish_tokens)
        .where(publish_tokens.c.id == token_id, publish_tokens.c.account_id == account_id, _live)
        # One mapping: SQLAlchemy refuses a dict and keywords together in `values`.
        .values({**values, "updated_at": now_ms()})
        .returning(*publish_tokens.c)
    )
    return result.first()


async def delete(conn: AsyncConnection, account_id: str, token_id: int) -> bool:
    result = await conn.execute(
        update(publish_tokens)
        .where(publish_tokens.c.id == token_id, publish_tokens.c.account_id == account_id, _live)
        .values(deleted_at=now_ms())
    )
    return bool(result.rowcount)


async def page(
    conn: AsyncConnection, account_id: str, starting_id: int | None, count: int, descending: bool
) -> list[DbRow]:
    query = select(publish_tokens).where(publish_tokens.c.account_id == account_id, _live)
    query = keyset(query, publish_tokens.c.id, starting_id, count, descending)
    return list((await conn.execute(query)).all())
