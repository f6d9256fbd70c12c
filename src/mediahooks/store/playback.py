"""Named queries for playback: which broadcast a viewer gets, its segments, whether the stream
needs a subscribe token, and the account's public-playback switch."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store import tokens
from mediahooks.store.schema import DbRow, accounts, broadcasts, publish_tokens, segments
from mediahooks.timeline import Segment

_timed = segments.c.start_ms.is_not(None)
_end = segments.c.start_ms + segments.c.duration_ms


def _segment(row: DbRow) -> Segment:
    return Segment(row.filename, int(row.start_ms), int(row.duration_ms), row.seq)


async def public(conn: AsyncConnection, account_id: str) -> bool | None:
    """Whether anyone may watch the account's unprotected streams; None: no such account."""
    query = select(accounts.c.public_playback).where(accounts.c.id == account_id)
    found = (await conn.execute(query)).first()
    return None if found is None else bool(found.public_playback)


async def set_public(conn: AsyncConnection, account_id: str, value: bool) -> None:
    await conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(public_playback=value)
    )


async def protected(
    conn: AsyncConnection, account_id: str, stream: str, token_ids: set[int]
) -> bool:
    """Whether viewers of ``stream`` need a subscribe token: a live publish token that may
    publish it, or the token that published the broadcasts served (``token_ids``, deleted or
    not), has subscribeRequiresAuth."""
    query = select(publish_tokens).where(
        publish_tokens.c.account_id == account_id,
        publish_tokens.c.subscribe_requires_auth.is_(True),
    )
    for row in await conn.execute(query):
        if row.id in token_ids or (row.deleted_at is None and tokens.allows(row, stream)):
            return True
    return False


async def latest(conn: AsyncConnection, account_id: str, stream: str) -> DbRow | None:
    """The stream's newest broadcast, live or ended."""
    query = (
        select(broadcasts)
        .where(broadcasts.c.account_id == account_id, broadcasts.c.stream_name == stream)
        .order_by(broadcasts.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def newest_segments(conn: AsyncConnection, broadcast_id: int, count: int) -> list[Segment]:
    """The broadcast's last ``count`` timed segments, newest first."""
    query = (
        select(segments.c.filename, segments.c.start_ms, segments.c.duration_ms, segments.c.seq)
        .where(segments.c.broadcast_id == broadcast_id, _timed)
        .order_by(segments.c.start_ms.desc())
        .limit(count)
    )
    return [_segment(r) for r in await conn.execute(query)]


async def overlapping(
    conn: AsyncConnection, account_id: str, stream: str, lo: int, hi: int
) -> dict[int, list[Segment]]:
    """The timed segments of the stream overlapping [lo, hi], by broadcast, in order."""
    query = (
        select(
            segments.c.broadcast_id,
            segments.c.filename,
            segments.c.start_ms,
            segments.c.duration_ms,
            segments.c.seq,
        )
        .join(broadcasts, broadcasts.c.id == segments.c.broadcast_id)
        .where(
            broadcasts.c.account_id == account_id,
            broadcasts.c.stream_name == stream,
            _timed,
            segments.c.start_ms < hi,
            _end > lo,
        )
        .order_by(segments.c.broadcast_id, segments.c.start_ms)
    )
    found: dict[int, list[Segment]] = {}
    for row in await conn.execute(query):
        found.setdefault(row.broadcast_id, []).append(_segment(row))
    return found


async def broadcasts_by_id(conn: AsyncConnection, ids: list[int]) -> dict[int, DbRow]:
    query = select(broadcasts).where(broadcasts.c.id.in_(ids))
    return {row.id: row for row in await conn.execute(query)}


async def segment_file(
    conn: AsyncConnection, account_id: str, stream: str, broadcast_id: int, filename: str
) -> DbRow | None:
    """A segment of the stream's broadcast with its broadcast's state, or None."""
    query = (
        select(
            segments.c.path,
            segments.c.start_ms,
            segments.c.duration_ms,
            broadcasts.c.ended_at,
        )
        .join(broadcasts, broadcasts.c.id == segments.c.broadcast_id)
        .where(
            segments.c.broadcast_id == broadcast_id,
            segments.c.filename == filename,
            broadcasts.c.account_id == account_id,
            broadcasts.c.stream_name == stream,
        )
    )
    return (await conn.execute(query)).first()


async def broadcast_of(
    conn: AsyncConnection, account_id: str, stream: str, broadcast_id: int
) -> DbRow | None:
    query = select(broadcasts).where(
        broadcasts.c.id == broadcast_id,
        broadcasts.c.account_id == account_id,
        broadcasts.c.stream_name == stream,
    )
    return (await conn.execute(query)).first()
