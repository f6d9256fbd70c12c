"""Server-wide secret keys, made once and shared by every process through the database."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store.schema import server_keys


async def get_or_create(conn: AsyncConnection, name: str) -> bytes:
    query = select(server_keys.c.value).where(server_keys.c.name == name)
    value = (await conn.execute(query)).scalar()
    if value is None:
        try:
            async with conn.begin_nested():
                value = secrets.token_hex(32)
                await conn.execute(server_keys.insert().values(name=name, value=value))
        except IntegrityError:  # another process made it first
            value = (await conn.execute(query)).scalar_one()
    return bytes.fromhex(value)
