"""Named queries for storage profiles: an account's own buckets (`storage/profiles.py`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.clock import now_ms
from mediahooks.store.schema import DbRow, media_assets, storage_profiles

_table = storage_profiles


async def create(conn: AsyncConnection, account_id: str, values: dict[str, Any]) -> DbRow:
    now = now_ms()
    if values.get("is_default"):
        await _clear_default(conn, account_id)
    return (
        await conn.execute(
            _table.insert()
            .values(
                id=str(uuid.uuid4()),
                account_id=account_id,
                created_at=now,
                updated_at=now,
                **values,
            )
            .returning(*_table.c)
        )
    ).one()


async def get(conn: AsyncConnection, account_id: str, profile_id: str) -> DbRow | None:
    query = select(_table).where(_table.c.id == profile_id, _table.c.account_id == account_id)
    return (await conn.execute(query)).first()


async def by_id(conn: AsyncConnection, profile_id: str) -> DbRow | None:
    """Any account's profile (the worker and the sweeper act for every account)."""
    return (await conn.execute(select(_table).where(_table.c.id == profile_id))).first()


async def default(conn: AsyncConnection, account_id: str) -> DbRow | None:
    query = select(_table).where(_table.c.account_id == account_id, _table.c.is_default)
    return (await conn.execute(query)).first()


async def page(
    conn: AsyncConnection,
    account_id: str,
    *,
    only_default: bool | None,
    offset: int,
    limit: int,
    desc: bool,
) -> list[DbRow]:
    query = select(_table).where(_table.c.account_id == account_id)
    if only_default is not None:
        query = query.where(_table.c.is_default == only_default)
    order = (_table.c.name.desc(), _table.c.id.desc()) if desc else (_table.c.name, _table.c.id)
    return list((await conn.execute(query.order_by(*order).offset(offset).limit(limit))).all())


async def change(
    conn: AsyncConnection, account_id: str, profile_id: str, values: dict[str, Any]
) -> DbRow | None:
    if values.get("is_default"):
        await _clear_default(conn, account_id)
    query = (
        update(_table)
        .where(_table.c.id == profile_id, _table.c.account_id == account_id)
        .values(updated_at=now_ms(), **values)
        .returning(*_table.c)
    )
    return (await conn.execute(query)).first()


async def in_use(conn: AsyncConnection, profile_id: str) -> int:
    """How many assets not yet deleted keep their files in the profile's bucket."""
    query = select(func.count()).where(
        media_assets.c.storage_profile_id == profile_id, media_assets.c.status != "deleted"
    )
    return int((await conn.execute(query)).scalar_one())


async def delete(conn: AsyncConnection, account_id: str, profile_id: str) -> bool:
    query = _table.delete().where(_table.c.id == profile_id, _table.c.account_id == account_id)
    return bool((await conn.execute(query)).rowcount)


async def _clear_default(conn: AsyncConnection, account_id: str) -> None:
    """One default profile per account: a new default replaces the previous one."""
    await conn.execute(
        update(_table)
        .where(_table.c.account_id == account_id, _table.c.is_default)
        .values(is_default=False, updated_at=now_ms())
    )
