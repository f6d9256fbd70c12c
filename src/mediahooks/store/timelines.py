"""Named queries for broadcasts and their segments: the clippable timeline of each stream."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.store import portable
from mediahooks.store.schema import DbRow, broadcasts, segments
from mediahooks.timeline import Span

_timed = segments.c.start_ms.is_not(None)


@dataclass(frozen=True)
class Recent:
    """A broadcast and what of it is still clippable (epoch ms; None before any segment is
    timed or after all have expired)."""

    broadcast: DbRow
    lo: int | None
    hi: int | None

    @property
    def clippable_ms(self) -> int:
        return 0 if self.lo is None or self.hi is None else self.hi - self.lo


_end = segments.c.start_ms + segments.c.duration_ms


async def live(conn: AsyncConnection, account_id: str, stream_name: str) -> DbRow | None:
    """The stream's broadcast that has not ended, locked against a concurrent start or end.

    Publishers send files in parallel (ffmpeg sends its first segment while the init segment
    is still in flight): the stream is locked first, so only one of them starts a broadcast.
    """
    await portable.hold(conn, f"stream:{account_id}/{stream_name}")
    query = (
        select(broadcasts)
        .where(
            broadcasts.c.account_id == account_id,
            broadcasts.c.stream_name == stream_name,
            broadcasts.c.ended_at.is_(None),
        )
        .order_by(broadcasts.c.id.desc())
        .limit(1)
        .with_for_update()
    )
    return (await conn.execute(query)).first()


async def get(conn: AsyncConnection, broadcast_id: int, *, lock: bool = False) -> DbRow | None:
    query = select(broadcasts).where(broadcasts.c.id == broadcast_id)
    return (await conn.execute(query.with_for_update() if lock else query)).first()


async def start(
    conn: AsyncConnection,
    *,
    account_id: str,
    stream_name: str,
    token_id: int,
    feed_id: str,
    kind: str,
    now: int,
) -> DbRow:
    return (
        await conn.execute(
            broadcasts.insert()
            .values(
                account_id=account_id,
                stream_name=stream_name,
                token_id=token_id,
                feed_id=feed_id,
                kind=kind,
                started_at=now,
                last_arrival_at=now,
            )
            .returning(*broadcasts.c)
        )
    ).one()


async def end(conn: AsyncConnection, broadcast_id: int, now: int) -> DbRow:
    return (
        await conn.execute(
            update(broadcasts)
            .where(broadcasts.c.id == broadcast_id)
            .values(ended_at=now)
            .returning(*broadcasts.c)
        )
    ).one()


async def set_init(conn: AsyncConnection, broadcast_id: int, path: str, now: int) -> None:
    await conn.execute(
        update(broadcasts)
        .where(broadcasts.c.id == broadcast_id)
        .values(init_path=path, last_arrival_at=now)
    )


async def has_segment(conn: AsyncConnection, broadcast_id: int, filename: str) -> bool:
    query = select(segments.c.id).where(
        segments.c.broadcast_id == broadcast_id, segments.c.filename == filename
    )
    return (await conn.execute(query)).first() is not None


async def missing(conn: AsyncConnection, broadcast_id: int, filenames: Iterable[str]) -> set[str]:
    """Which of ``filenames`` the broadcast has not received."""
    wanted = set(filenames)
    query = select(segments.c.filename).where(
        segments.c.broadcast_id == broadcast_id, segments.c.filename.in_(wanted)
    )
    return wanted - {row.filename for row in await conn.execute(query)}


async def add_segment(
    conn: AsyncConnection, broadcast_id: int, filename: str, path: str, size: int, now: int
) -> None:
    # The next number of the broadcast: the caller holds the stream's lock (`live`), so two
    # segments of one broadcast never take the same one.
    seq = (
        select(func.coalesce(func.max(segments.c.seq), -1) + 1)
        .where(segments.c.broadcast_id == broadcast_id)
        .scalar_subquery()
    )
    await conn.execute(
        segments.insert().values(
            broadcast_id=broadcast_id,
            filename=filename,
            path=path,
            size=size,
            arrived_at=now,
            seq=seq,
        )
    )
    await conn.execute(
        update(broadcasts).where(broadcasts.c.id == broadcast_id).values(last_arrival_at=now)
    )


async def touch(conn: AsyncConnection, broadcast_id: int, now: int) -> None:
    """A live publisher is still sending, though no segment was cut lately (a long keyframe
    interval): keep the sweeper from taking the silence for an end."""
    await conn.execute(
        update(broadcasts).where(broadcasts.c.id == broadcast_id).values(last_arrival_at=now)
    )


async def untimed(conn: AsyncConnection, broadcast_id: int) -> dict[str, int]:
    """Segments still waiting for a playlist to time them: filename -> arrival (epoch ms)."""
    query = select(segments.c.filename, segments.c.arrived_at).where(
        segments.c.broadcast_id == broadcast_id, segments.c.start_ms.is_(None)
    )
    return {row.filename: row.arrived_at for row in await conn.execute(query)}


async def set_timing(
    conn: AsyncConnection, broadcast_id: int, timings: Iterable[tuple[str, int, int]]
) -> None:
    """Apply (filename, start_ms, duration_ms) from a playlist."""
    for filename, start_ms, duration_ms in timings:
        await conn.execute(
            update(segments)
            .where(segments.c.broadcast_id == broadcast_id, segments.c.filename == filename)
            .values(start_ms=start_ms, duration_ms=duration_ms)
        )


async def coverage(conn: AsyncConnection, broadcast_id: int) -> tuple[int, int] | None:
    """Where a broadcast's timed segments begin and end (epoch ms), if it has any."""
    query = select(func.min(segments.c.start_ms), func.max(_end)).where(
        segments.c.broadcast_id == broadcast_id, _timed
    )
    lo, hi = (await conn.execute(query)).one()
    return None if lo is None else (int(lo), int(hi))


async def spans(conn: AsyncConnection, account_id: str, stream_name: str) -> list[Span]:
    """The coverage of each broadcast of the stream that still has timed segments."""
    query = (
        select(
            broadcasts.c.id,
            broadcasts.c.token_id,
            func.min(segments.c.start_ms).label("lo"),
            func.max(_end).label("hi"),
        )
        .join(segments, segments.c.broadcast_id == broadcasts.c.id)
        .where(
            broadcasts.c.account_id == account_id, broadcasts.c.stream_name == stream_name, _timed
        )
        .group_by(broadcasts.c.id, broadcasts.c.token_id)
    )
    return [Span(r.id, r.token_id, r.lo, r.hi) for r in await conn.execute(query)]


async def recent(conn: AsyncConnection, account_id: str, limit: int = 50) -> list[Recent]:
    """The account's latest broadcasts, live ones first, each with its coverage."""
    query = (
        select(broadcasts)
        .where(broadcasts.c.account_id == account_id)
        .order_by(broadcasts.c.ended_at.is_not(None), broadcasts.c.id.desc())
        .limit(limit)
    )
    rows = list((await conn.execute(query)).all())
    coverage_query = (
        select(
            segments.c.broadcast_id,
            func.min(segments.c.start_ms).label("lo"),
            func.max(_end).label("hi"),
        )
        .where(segments.c.broadcast_id.in_([r.id for r in rows]), _timed)
        .group_by(segments.c.broadcast_id)
    )
    covered = {r.broadcast_id: (r.lo, r.hi) for r in await conn.execute(coverage_query)}
    return [Recent(row, *covered.get(row.id, (None, None))) for row in rows]


async def segments_between(
    conn: AsyncConnection, broadcast_id: int, start_ms: int, stop_ms: int
) -> list[DbRow]:
    """The timed segments of a broadcast overlapping [start, stop], in order."""
    query = (
        select(segments)
        .where(
            segments.c.broadcast_id == broadcast_id,
            _timed,
            segments.c.start_ms < stop_ms,
            _end > start_ms,
        )
        .order_by(segments.c.start_ms)
    )
    return list((await conn.execute(query)).all())


async def idle(conn: AsyncConnection, arrived_before: int) -> list[int]:
    """Broadcasts still open whose last file arrived before ``arrived_before``."""
    query = select(broadcasts.c.id).where(
        broadcasts.c.ended_at.is_(None), broadcasts.c.last_arrival_at < arrived_before
    )
    return list((await conn.execute(query)).scalars())


async def expired_segments(
    conn: AsyncConnection, account_id: str, older_than: int, limit: int = 500
) -> list[DbRow]:
    """Segments of the account whose media began before ``older_than`` (or, untimed, arrived)."""
    began = func.coalesce(segments.c.start_ms, segments.c.arrived_at)
    query = (
        select(segments.c.id, segments.c.path)
        .join(broadcasts, broadcasts.c.id == segments.c.broadcast_id)
        .where(broadcasts.c.account_id == account_id, began < older_than)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def beyond_cap(conn: AsyncConnection, cap_ms: int, limit: int = 500) -> list[DbRow]:
    """Segments more than ``cap_ms`` older than the newest segment of their broadcast."""
    newest = (
        select(segments.c.broadcast_id, func.max(segments.c.arrived_at).label("newest"))
        .group_by(segments.c.broadcast_id)
        .subquery()
    )
    query = (
        select(segments.c.id, segments.c.path)
        .join(newest, newest.c.broadcast_id == segments.c.broadcast_id)
        .where(segments.c.arrived_at < newest.c.newest - cap_ms)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def forget_segments(conn: AsyncConnection, ids: list[int]) -> None:
    await conn.execute(delete(segments).where(and_(segments.c.id.in_(ids))))


async def ended_segments(conn: AsyncConnection, account_id: str) -> list[DbRow]:
    """Every segment of the account's ended broadcasts: what deleting all timelines removes."""
    query = (
        select(segments.c.id, segments.c.path, segments.c.broadcast_id)
        .join(broadcasts, broadcasts.c.id == segments.c.broadcast_id)
        .where(broadcasts.c.account_id == account_id, broadcasts.c.ended_at.is_not(None))
    )
    return list((await conn.execute(query)).all())


async def live_broadcasts(conn: AsyncConnection, account_id: str) -> list[DbRow]:
    query = select(broadcasts).where(
        broadcasts.c.account_id == account_id, broadcasts.c.ended_at.is_(None)
    )
    return list((await conn.execute(query)).all())


async def set_whip_resource(conn: AsyncConnection, broadcast_id: int, resource: str) -> None:
    await conn.execute(
        update(broadcasts).where(broadcasts.c.id == broadcast_id).values(whip_resource=resource)
    )


async def request_stop(conn: AsyncConnection, stream: str, resource: str, now: int) -> bool:
    """Ask whichever process receives the live WHIP broadcast ``resource`` of ``stream`` to
    end it; False when there is no such live broadcast."""
    result = await conn.execute(
        update(broadcasts)
        .where(
            broadcasts.c.whip_resource == resource,
            broadcasts.c.stream_name == stream,
            broadcasts.c.ended_at.is_(None),
        )
        .values(stop_requested_at=now)
    )
    return bool(result.rowcount)


async def stop_requested(conn: AsyncConnection, broadcast_id: int) -> bool:
    query = select(broadcasts.c.stop_requested_at).where(broadcasts.c.id == broadcast_id)
    return (await conn.execute(query)).scalar() is not None
