"""Which database a URL names: each dialect builds on the seam (`store/db.py`), and only this
module knows them both."""

from __future__ import annotations

from mediahooks.store.db import Database
from mediahooks.store.postgres import PostgresDatabase
from mediahooks.store.sqlite import SqliteDatabase


def connect(url: str, sqlite_synchronous: str = "NORMAL") -> Database:
    """The database at ``url`` (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``)."""
    if url.startswith("postgresql"):
        return PostgresDatabase(url)
    return SqliteDatabase(url, sqlite_synchronous)
