"""Accounts and their API secrets. Secrets are kept only as SHA-256 hashes: they are long random
strings, so a fast hash is enough and lookup by hash stays a single indexed query."""

from __future__ import annotations

import hashlib
import secrets
import string

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.clock import now_ms
from mediahooks.store.schema import accounts


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_account_id() -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(6))


def new_api_secret() -> str:
    return secrets.token_urlsafe(32)


async def create(conn: AsyncConnection, secret: str | None = None) -> tuple[str, str]:
    """A new account; returns its id and its API secret (the only time the secret is seen)."""
    secret = secret or new_api_secret()
    account_id = new_account_id()
    await conn.execute(
        accounts.insert().values(
            id=account_id, secret_hash=hash_secret(secret), created_at=now_ms()
        )
    )
    return account_id, secret


async def ensure(conn: AsyncConnection, secret: str | None) -> tuple[str, str | None]:
    """The first account, made on first start. Returns its id and a secret to show once, if new.

    A given secret (MEDIAHOOKS_API_SECRET) always opens the first account.
    """
    first = (
        await conn.execute(
            select(accounts.c.id, accounts.c.secret_hash)
            .order_by(accounts.c.created_at, accounts.c.id)
            .limit(1)
        )
    ).first()
    if first is None:
        account_id, created = await create(conn, secret)
        return account_id, None if secret else created
    if secret and (await find(conn, secret)) is None:
        await conn.execute(
            update(accounts)
            .where(accounts.c.id == first.id)
            .values(secret_hash=hash_secret(secret))
        )
    return first.id, None


async def find(conn: AsyncConnection, secret: str) -> str | None:
    return (
        await conn.execute(
            select(accounts.c.id).where(accounts.c.secret_hash == hash_secret(secret))
        )
    ).scalar()
