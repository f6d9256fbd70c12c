"""`Idempotency-Key`: the first answer to a key is kept and returned to every repeat."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.clock import now_ms
from mediahooks.store.schema import idempotency_keys


async def recall(conn: AsyncConnection, account_id: str, key: str) -> Any | None:
    query = select(idempotency_keys.c.response).where(
        idempotency_keys.c.account_id == account_id, idempotency_keys.c.key == key
    )
    stored = (await conn.execute(query)).scalar()
    return None if stored is None else json.loads(stored)


async def remember(conn: AsyncConnection, account_id: str, key: str, response: Any) -> None:
    """Keep the answer, in the transaction that made it; a concurrent twin fails to commit."""
    await conn.execute(
        idempotency_keys.insert().values(
            account_id=account_id, key=key, response=json.dumps(response), created_at=now_ms()
        )
    )
