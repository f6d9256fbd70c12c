"""What the two databases write differently for one meaning, said once for every query above
the seam: each piece renders in its dialect's words (SQLAlchemy's `compiles`), so a query
module never asks which database it is on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class by_code_point(FunctionElement[Any]):
    """Its text argument, ordered by code point on both databases: SQLite's default (BINARY on
    UTF-8) already is; PostgreSQL's locale collations are not, so it says COLLATE "C"."""

    name = "by_code_point"
    inherit_cache = True


@compiles(by_code_point)
def _as_is(element: by_code_point, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(by_code_point, "postgresql")
def _collate_c(element: by_code_point, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.clauses, **kw)} COLLATE "C"'


async def hold(conn: AsyncConnection, key: str) -> None:
    """Hold ``key`` until the transaction ends, against another transaction holding it.
    SQLite's transactions already run one at a time; PostgreSQL takes an advisory lock."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
