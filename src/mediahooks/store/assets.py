"""Media asset state changes. Each one commits with the hook it emits (through the outbox) or
not at all; the lifecycle rules themselves live in `mediahooks.assets`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    Text,
    and_,
    case,
    exists,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import events
from mediahooks.assets import DELETABLE, RECORDINGS_EVENT, Status, check_transition
from mediahooks.clock import now_ms
from mediahooks.errors import NotFound
from mediahooks.store import outbox
from mediahooks.store.db import MEDIA, mark_wake
from mediahooks.store.schema import DbRow, accounts, broadcasts, media_assets, segments


class AssetNotFound(NotFound, LookupError):
    """No asset of that id (or none that can still change)."""


@dataclass(frozen=True)
class NewAsset:
    account_id: str
    type: events.MediaType
    token_id: int
    stream_name: str
    start_time: int
    stop_time: int | None = None
    name: str | None = None
    expiration: int | None = None
    broadcast_id: int | None = None
    storage_profile_id: str | None = None  # None: the service's own storage


def hook_data(row: DbRow, metadata: dict[str, Any] | None) -> events.MediaData:
    return events.MediaData(
        media_asset_id=row.id,
        token_id=row.token_id,
        stream_name=row.stream_name,
        stream_id=f"{row.account_id}/{row.stream_name}",
        start_time=row.start_time,
        type=row.type,
        metadata=metadata,
        expiration=row.expiration,
    )


async def _emit(
    conn: AsyncConnection,
    row: DbRow,
    status: Status,
    event: events.MediaEvent,
    metadata: dict[str, Any] | None,
    now: int,
) -> None:
    """The asset's `media` hook and, for a recording, its `recordings` hook after it (one
    ordering key: a webhook taking both gets them in this order)."""
    await outbox.emit(conn, row.account_id, events.media_hook(event, hook_data(row, metadata), now))
    if row.type == "recording":
        data = events.RecordingData(
            record_file_id=row.id,
            token_id=row.token_id,
            stream_name=row.stream_name,
            recorded_on=row.start_time,
            removed_on=row.removed_at,
            metadata=metadata if status is Status.COMPLETE else None,
        )
        hook = events.recordings_hook(RECORDINGS_EVENT[status], data, now)
        await outbox.emit(conn, row.account_id, hook)


async def create(
    conn: AsyncConnection, asset: NewAsset, hook_metadata: dict[str, Any] | None = None
) -> DbRow:
    """A new asset in `processing`, with its `processing` hook (whose `metadata` is
    ``hook_metadata``, e.g. a clip's playback link, else `{}`)."""
    check_transition(None, Status.PROCESSING)
    now = now_ms()
    row = (
        await conn.execute(
            media_assets.insert()
            .values(
                id=events.new_asset_id(),
                account_id=asset.account_id,
                type=asset.type,
                token_id=asset.token_id,
                stream_name=asset.stream_name,
                status=Status.PROCESSING.value,
                start_time=asset.start_time,
                stop_time=asset.stop_time,
                name=asset.name,
                metadata="{}",
                expiration=asset.expiration,
                broadcast_id=asset.broadcast_id,
                storage_profile_id=asset.storage_profile_id,
                created_at=now,
                updated_at=now,
            )
            .returning(*media_assets.c)
        )
    ).one()
    await _emit(conn, row, Status.PROCESSING, "processing", hook_metadata or {}, now)
    mark_wake(conn, MEDIA)
    return row


async def transition(
    conn: AsyncConnection,
    asset_id: str,
    new: Status,
    *,
    metadata: dict[str, Any] | None = None,
    error: str | None = None,
    **columns: Any,
) -> DbRow:
    """Move an asset to ``new`` and emit its hook, in the caller's transaction.

    The row is locked first, so two changes of one asset commit one after the other and their
    events (and deliveries) are numbered in that order.
    """
    current = (
        await conn.execute(
            select(media_assets).where(media_assets.c.id == asset_id).with_for_update()
        )
    ).first()
    if current is None:
        raise AssetNotFound(asset_id)
    event = check_transition(Status(current.status), new)
    now = now_ms()
    values: dict[str, Any] = {"status": new.value, "updated_at": now, **columns}
    if metadata is not None:
        values["metadata"] = json.dumps(metadata)
    if error is not None:
        values["error"] = error
    if new is Status.DELETED:
        values["removed_at"] = now
    row = (
        await conn.execute(
            update(media_assets)
            .where(media_assets.c.id == asset_id)
            .values(values)
            .returning(*media_assets.c)
        )
    ).one()
    if event is not None:
        hook_metadata = {"error": error} if new is Status.ERROR else json.loads(row.metadata)
        await _emit(conn, row, new, event, hook_metadata, now)
    return row


async def get(conn: AsyncConnection, account_id: str, asset_id: str) -> DbRow | None:
    query = select(media_assets).where(
        media_assets.c.id == asset_id, media_assets.c.account_id == account_id
    )
    return (await conn.execute(query)).first()


async def claim(conn: AsyncConnection, owner: str, now: int, lease_ms: int) -> DbRow | None:
    """Lease one asset that is ready to cut: `processing`, with its stop known."""
    ready = (
        select(media_assets.c.id)
        .where(
            media_assets.c.status == Status.PROCESSING.value,
            media_assets.c.stop_time.is_not(None),
            or_(media_assets.c.lease_until.is_(None), media_assets.c.lease_until <= now),
        )
        .order_by(media_assets.c.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    result = await conn.execute(
        update(media_assets)
        .where(media_assets.c.id.in_(ready))
        .values(lease_owner=owner, lease_until=now + lease_ms)
        .returning(*media_assets.c)
    )
    return result.first()


async def renew(conn: AsyncConnection, asset_id: str, owner: str, until: int) -> bool:
    result = await conn.execute(
        update(media_assets)
        .where(media_assets.c.id == asset_id, media_assets.c.lease_owner == owner)
        .values(lease_until=until)
    )
    return bool(result.rowcount)


async def open_recordings(conn: AsyncConnection, broadcast_id: int) -> list[DbRow]:
    """Recordings of a broadcast whose end is not known yet."""
    query = select(media_assets).where(
        media_assets.c.broadcast_id == broadcast_id,
        media_assets.c.type == "recording",
        media_assets.c.status == Status.PROCESSING.value,
        media_assets.c.stop_time.is_(None),
    )
    return list((await conn.execute(query)).all())


async def set_range(conn: AsyncConnection, asset_id: str, start_ms: int, stop_ms: int) -> None:
    """Fix where a recording starts and stops: it is ready to cut."""
    await conn.execute(
        update(media_assets)
        .where(media_assets.c.id == asset_id)
        .values(start_time=start_ms, stop_time=stop_ms, updated_at=now_ms())
    )
    mark_wake(conn, MEDIA)


async def expiration_rules(conn: AsyncConnection, account_id: str) -> dict[str, Any]:
    query = select(accounts.c.media_expiration).where(accounts.c.id == account_id)
    rules: dict[str, Any] = json.loads((await conn.execute(query)).scalar_one())
    return rules


async def set_expiration_rules(
    conn: AsyncConnection, account_id: str, rules: dict[str, Any]
) -> None:
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(media_expiration=json.dumps(rules))
    )


async def expiration_for(conn: AsyncConnection, account_id: str, asset_type: str) -> int | None:
    """When a new asset of ``asset_type`` expires under the account's rules (None: never)."""
    rule = (await expiration_rules(conn, account_id)).get(f"{asset_type}s")
    return now_ms() + int(rule["days"]) * 86_400_000 if rule else None


async def due_for_removal(conn: AsyncConnection, now: int, limit: int = 100) -> list[DbRow]:
    """Assets to remove: expired ones, and deletions a crash interrupted."""
    query = (
        select(media_assets)
        .where(
            or_(
                and_(
                    media_assets.c.expiration <= now,
                    media_assets.c.status.in_([s.value for s in DELETABLE]),
                ),
                media_assets.c.status == Status.DELETING.value,
            )
        )
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


# A row of a listing: an asset, or a broadcast's timeline in the same shape (`last_at`, when
# its newest segment arrived, is where its expiration counts from; NULL for assets).
_ASSET_ROW = (
    media_assets.c.id,
    media_assets.c.account_id,
    media_assets.c.type,
    media_assets.c.token_id,
    media_assets.c.stream_name,
    media_assets.c.status,
    media_assets.c.start_time,
    media_assets.c.stop_time,
    media_assets.c.name,
    media_assets.c.error,
    media_assets.c.metadata,
    media_assets.c.expiration,
    media_assets.c.created_at,
    media_assets.c.removed_at,
    media_assets.c.broadcast_id,
    literal(None, BigInteger).label("last_at"),
)


def _timeline_rows() -> Select[Any]:
    """Each broadcast's timeline as a listing row: `processing` while live, `complete` once
    ended, `deleted` once every segment is gone."""
    has_segments = exists().where(segments.c.broadcast_id == broadcasts.c.id)
    status = case(
        (broadcasts.c.ended_at.is_(None), literal(Status.PROCESSING.value)),
        (has_segments, literal(Status.COMPLETE.value)),
        else_=literal(Status.DELETED.value),
    )
    return select(
        broadcasts.c.feed_id.label("id"),
        broadcasts.c.account_id,
        literal("timeline", String).label("type"),
        broadcasts.c.token_id,
        broadcasts.c.stream_name,
        status.label("status"),
        broadcasts.c.started_at.label("start_time"),
        broadcasts.c.ended_at.label("stop_time"),
        literal(None, Text).label("name"),
        literal(None, Text).label("error"),
        literal("{}", Text).label("metadata"),
        literal(None, BigInteger).label("expiration"),
        broadcasts.c.started_at.label("created_at"),
        literal(None, BigInteger).label("removed_at"),
        broadcasts.c.id.label("broadcast_id"),
        broadcasts.c.last_arrival_at.label("last_at"),
    )


SORTS = ("startTime", "stopTime", "streamName", "tokenId", "created")
_SORT_COLUMNS = {
    "startTime": "start_time",
    "stopTime": "stop_time",
    "streamName": "stream_name",
    "tokenId": "token_id",
    "created": "created_at",
}


@dataclass(frozen=True)
class Listing:
    statuses: list[str]
    types: list[str]
    stream_name: str | None = None
    token_id: int | None = None
    name: str | None = None
    sort: str = "startTime"
    descending: bool = False
    page: int = 1
    limit: int = 25


async def page(conn: AsyncConnection, account_id: str, listing: Listing) -> list[DbRow]:
    """A page of the account's assets (and, when asked for, timelines); deleted ones only
    when asked for."""
    parts: list[Select[Any]] = []
    asset_types = [t for t in listing.types if t != "timeline"]
    if asset_types:
        parts.append(
            select(*_ASSET_ROW).where(
                media_assets.c.account_id == account_id, media_assets.c.type.in_(asset_types)
            )
        )
    if "timeline" in listing.types and listing.name is None:  # timelines have no name
        parts.append(_timeline_rows().where(broadcasts.c.account_id == account_id))
    if not parts:
        return []
    rows = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    query = select(rows).where(rows.c.status.in_(listing.statuses))
    for column, value in (
        (rows.c.stream_name, listing.stream_name),
        (rows.c.token_id, listing.token_id),
        (rows.c.name, listing.name),
    ):
        if value is not None:
            query = query.where(column == value)
    key = rows.c[_SORT_COLUMNS[listing.sort]]
    order = (key.desc(), rows.c.id.desc()) if listing.descending else (key, rows.c.id)
    query = query.order_by(*order).offset((listing.page - 1) * listing.limit).limit(listing.limit)
    return list((await conn.execute(query)).all())


async def of_type(conn: AsyncConnection, account_id: str, asset_type: str) -> list[DbRow]:
    """Every asset of the account of one type that is not deleted (nor being deleted)."""
    query = (
        select(media_assets)
        .where(
            media_assets.c.account_id == account_id,
            media_assets.c.type == asset_type,
            media_assets.c.status.not_in([Status.DELETED.value, Status.DELETING.value]),
        )
        .order_by(media_assets.c.created_at)
    )
    return list((await conn.execute(query)).all())


async def get_any(conn: AsyncConnection, asset_id: str) -> DbRow | None:
    """An asset of any account: download links carry their own credential."""
    return (await conn.execute(select(media_assets).where(media_assets.c.id == asset_id))).first()
