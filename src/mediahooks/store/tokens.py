"""Named queries for publish tokens. The `token` string is what a publisher presents; the
integer `id` is the `tokenId` of hooks and assets."""

from __future__ import annotations

import json
import secrets
from typing import Any, Literal

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import patterns
from mediahooks.admission import Rules
from mediahooks.clock import now_ms
from mediahooks.store.portable import by_code_point
from mediahooks.store.schema import DbRow, broadcasts, publish_tokens

_live = publish_tokens.c.deleted_at.is_(None)
SortBy = Literal["Name", "AddedOn"]
FilterBy = Literal["None", "TokenName", "StreamName", "TokenOrStreamName"]


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


def rules(row: DbRow) -> Rules:
    """Who the token admits (`admission.check`)."""
    return Rules(
        is_active=bool(row.is_active),
        expires_at=row.expires_at,
        allowed_ip_addresses=tuple(json.loads(row.allowed_ip_addresses)),
        allowed_origins=tuple(json.loads(row.allowed_origins)),
    )


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


async def get(
    conn: AsyncConnection, account_id: str, token_id: int, *, lock: bool = False
) -> DbRow | None:
    """The token; ``lock``: until the transaction ends, for an update made from what it reads
    (SQLite's transactions run one at a time already)."""
    query = select(publish_tokens).where(
        publish_tokens.c.id == token_id, publish_tokens.c.account_id == account_id, _live
    )
    if lock:  # nothing on SQLite, whose transactions already run one at a time
        query = query.with_for_update()
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


def _order(sort_by: SortBy, descending: bool) -> list[Any]:
    """The platform's sort keys, ties broken by id. Labels compare by code point on both
    databases (PostgreSQL's locale collations would order them differently from SQLite)."""
    if sort_by == "Name":
        key: ColumnElement[Any] = by_code_point(publish_tokens.c.label)
    else:
        key = publish_tokens.c.created_at
    keys = [key, publish_tokens.c.id]
    return [k.desc() for k in keys] if descending else keys


async def page(
    conn: AsyncConnection,
    account_id: str,
    sort_by: SortBy,
    descending: bool,
    page: int,
    items: int,
) -> list[DbRow]:
    """Page ``page`` (from 1) of ``items`` tokens: past the last page, none."""
    query = (
        select(publish_tokens)
        .where(publish_tokens.c.account_id == account_id, _live)
        .order_by(*_order(sort_by, descending))
        .offset((page - 1) * items)
        .limit(items)
    )
    return list((await conn.execute(query)).all())


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def named(row: DbRow, name: str, filter_by: FilterBy) -> bool:
    """Whether ``name`` is part of the token's label or of one of its stream names (not of a
    pattern: a regex stream rule is no name), ignoring case."""
    needle = name.lower()
    in_label = needle in row.label.lower()
    in_streams = any(
        needle in rule["streamName"].lower()
        for rule in json.loads(row.streams)
        if not rule.get("isRegex")
    )
    return {
        "None": True,
        "TokenName": in_label,
        "StreamName": in_streams,
        "TokenOrStreamName": in_label or in_streams,
    }[filter_by]


async def page_by_name(
    conn: AsyncConnection,
    account_id: str,
    name: str,
    filter_by: FilterBy,
    sort_by: SortBy,
    descending: bool,
    page: int,
    items: int,
) -> list[DbRow]:
    """A page of the tokens `named` ``name``. The database narrows them down by text (the
    label or the streams' JSON holds the name); which of those match is decided here."""
    query = select(publish_tokens).where(publish_tokens.c.account_id == account_id, _live)
    # Only plain ASCII narrows alike: SQLite folds the case of ASCII letters only, and the
    # streams' JSON escapes quotes, backslashes and anything beyond ASCII.
    if filter_by != "None" and name.isascii() and not set(name) & set('"\\'):
        like = _like(name)
        query = query.where(
            or_(
                publish_tokens.c.label.ilike(like, escape="\\"),
                publish_tokens.c.streams.ilike(like, escape="\\"),
            )
        )
    query = query.order_by(*_order(sort_by, descending))
    rows = [row for row in (await conn.execute(query)).all() if named(row, name, filter_by)]
    return rows[(page - 1) * items : page * items]


async def set_active(
    conn: AsyncConnection, account_id: str, token_ids: list[int], active: bool
) -> list[int]:
    """Set ``isActive`` of the account's tokens among ``token_ids``; the ids it had."""
    result = await conn.execute(
        update(publish_tokens)
        .where(publish_tokens.c.id.in_(token_ids), publish_tokens.c.account_id == account_id, _live)
        .values(is_active=active, updated_at=now_ms())
        .returning(publish_tokens.c.id)
    )
    return [row.id for row in result.all()]


async def live_ids(conn: AsyncConnection, account_id: str, stream: str | None = None) -> list[int]:
    """The ids of the tokens publishing the account's live streams (``stream`` only, if
    given): the broadcasts not ended."""
    query = (
        select(broadcasts.c.token_id)
        .distinct()
        .where(broadcasts.c.account_id == account_id, broadcasts.c.ended_at.is_(None))
        .order_by(broadcasts.c.token_id)
    )
    if stream is not None:
        query = query.where(broadcasts.c.stream_name == stream)
    return [int(row.token_id) for row in (await conn.execute(query)).all()]
