"""Throwaway databases for tests and benchmarks: a SQLite file, or a new PostgreSQL database
on the server in MEDIAHOOKS_TEST_POSTGRES_URL, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

POSTGRES_URL = os.environ.get(
    "MEDIAHOOKS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@asynccontextmanager
async def fresh_database(kind: str, directory: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database of ``kind`` (`sqlite` or `postgresql`)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'mediahooks.db'}"
        return
    name = f"mh_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A throwaway PostgreSQL database; PostgreSQL missing fails the test, never skips it."""
    try:
        async with fresh_database("postgresql", Path()) as url:
            yield url
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is required at {POSTGRES_URL} (MEDIAHOOKS_TEST_POSTGRES_URL): {exc}"
        )


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(POSTGRES_URL, timeout=10)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()
