"""`/api/v3/media/assets` and `/api/v3/account/media/expiration`: clips, recordings, their files,
and how long they are kept. `/media/<id>.mp4?expires=..&sig=..` serves the signed downloads."""

from __future__ import annotations

import json
import pathlib
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from pydantic import ConfigDict, Field, StrictStr
from sqlalchemy.exc import IntegrityError

from mediahooks.api import playlinks
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.bodies import Body
from mediahooks.api.envelope import ApiError, found, ok
from mediahooks.api.paging import MAX_ID
from mediahooks.assets import DELETABLE, Status
from mediahooks.clock import from_iso, iso, now_ms
from mediahooks.media import clips, files, links, removal
from mediahooks.service import Service
from mediahooks.storage import Storage, ranges
from mediahooks.store import assets as store
from mediahooks.store import idempotency, keys
from mediahooks.store.schema import DbRow

router = APIRouter(tags=["media assets"])
downloads = APIRouter(tags=["downloads"])

AssetId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex.")]
AssetStatus = Literal["processing", "complete", "error", "deleting"]
AssetType = Literal["clip", "recording"]
Sort = Literal["startTime", "stopTime", "streamName", "tokenId", "created"]
DOWNLOAD_KEY = "downloads"
# A signed link's redirect to the bucket needs to last only as long as the download starts.
LINK_TTL = 300.0


class ClipBody(Body):
    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    startTime: datetime
    stopTime: datetime | None = None
    tokenId: int | None = Field(None, ge=1, le=MAX_ID)
    name: StrictStr | None = Field(None, min_length=1, max_length=256)
    expiration: datetime | None = None


class Days(Body):
    model_config = ConfigDict(extra="ignore")
    days: int = Field(..., ge=1, le=365)


class ExpirationRules(Body):
    model_config = ConfigDict(extra="ignore")
    timelines: Days | None = None
    recordings: Days | None = None
    clips: Days | None = None


def asset_json(
    row: DbRow, download: dict[str, Any] | None = None, playback: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "type": row.type,
        "feed": {"tokenId": row.token_id, "streamName": row.stream_name},
        "startTime": iso(row.start_time),
        "stopTime": iso(row.stop_time),
        "name": row.name,
        "status": row.status,
        "error": row.error,
        "created": iso(row.created_at),
        "expiration": iso(row.expiration),
        "removed": iso(row.removed_at),
        "metadata": json.loads(row.metadata),
    }
    if row.file_path:
        # The platform's storage object: where the file is kept.
        out["storage"] = {
            "type": "s3" if row.file_path.startswith("s3://") else "local",
            "path": row.file_path,
        }
    if download is not None:
        out["download"] = download
    if playback is not None:
        # HLS of the asset's range, playable at once, while the MP4 is still being cut.
        out.update(playback)
    return out


async def download_links(service: Service, base_url: str, row: DbRow) -> dict[str, Any] | None:
    """Signed links to a complete asset's files, valid for the configured time."""
    if row.status != Status.COMPLETE.value:
        return None
    async with service.db.transaction() as conn:
        key = await keys.get_or_create(conn, DOWNLOAD_KEY)
    expires = now_ms() + int(service.settings.download_ttl * 1000)
    query = f"expires={expires}&sig={links.signature(key, row.id, expires)}"
    base = base_url.rstrip("/")
    if row.file_path and row.file_path.startswith("s3://"):
        # Straight from the bucket, presigned for the same time (unless proxied).
        media, poster = files.files_of(row)
        ttl = service.settings.download_ttl
        url = await service.storage.signed_url(media, ttl)
        poster_url = await service.storage.signed_url(poster, ttl)
        if url is not None and poster_url is not None:
            return {"downloadUrl": url, "downloadExpiresOn": iso(expires), "posterUrl": poster_url}
    return {
        "downloadUrl": f"{base}/media/{row.id}.mp4?{query}",
        "downloadExpiresOn": iso(expires),
        "posterUrl": f"{base}/media/{row.id}.jpg?{query}",
    }


@router.post("/api/v3/media/assets", summary="Request a clip of a live stream's timeline")
async def create_clip(
    body: ClipBody,
    request: Request,
    account: Account,
    service: ServiceDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> JSONResponse:
    now = now_ms()
    clip = clips.ClipRequest(
        stream_name=body.streamName,
        start_ms=from_iso(body.startTime),
        stop_ms=from_iso(body.stopTime) if body.stopTime else now,
        token_id=body.tokenId,
        name=body.name,
        expiration=from_iso(body.expiration) if body.expiration else None,
    )
    links = await playlinks.clip_links(service, str(request.base_url), account, clip.stream_name)
    try:
        async with service.db.transaction() as conn:
            if idempotency_key and (
                seen := await idempotency.recall(conn, account, idempotency_key)
            ):
                return ok(seen)
            try:
                rows = await clips.request(conn, account, clip, now, links)
            except clips.ClipRefused as exc:
                raise ApiError(400, exc.message, {exc.field: [exc.message]}) from exc
            data = [
                asset_json(r, playback=links(r.broadcast_id, r.start_time, r.stop_time))
                for r in rows
            ]
            if idempotency_key:
                await idempotency.remember(conn, account, idempotency_key, data)
    except IntegrityError:
        # A twin request with the same key committed first: its answer is ours.
        async with service.db.engine.connect() as conn:
            seen = await idempotency.recall(conn, account, idempotency_key or "")
        if seen is None:
            raise
        return ok(seen)
    return ok(data)


@router.get("/api/v3/media/assets", summary="List clips and recordings")
async def list_assets(
    account: Account,
    service: ServiceDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    sort: Sort = "startTime",
    desc: bool = False,
    status: Annotated[list[AssetStatus] | None, Query()] = None,
    type: Annotated[list[AssetType] | None, Query()] = None,
    streamName: Annotated[str | None, Query(max_length=128)] = None,
    tokenId: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
) -> JSONResponse:
    listing = store.Listing(
        statuses=list(status or ["processing", "complete"]),
        types=list(type or ["clip", "recording"]),
        stream_name=streamName,
        token_id=tokenId,
        name=name,
        sort=sort,
        descending=desc,
        page=page,
        limit=limit,
    )
    async with service.db.engine.connect() as conn:
        rows = await store.page(conn, account, listing)
    return ok([asset_json(r) for r in rows])


@router.get("/api/v3/media/assets/{mediaAssetId}", summary="Read an asset and its download link")
async def read_asset(
    mediaAssetId: AssetId, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        row = await store.get(conn, account, mediaAssetId)
    if row is not None and row.status == Status.DELETED.value:
        row = None
    row = found(row, f"Media asset {mediaAssetId}")
    base = str(request.base_url)
    playback = await playlinks.for_asset(service, base, row)
    return ok(asset_json(row, await download_links(service, base, row), playback))


@router.delete("/api/v3/media/assets", summary="Delete complete or errored assets")
async def delete_assets(
    account: Account,
    service: ServiceDep,
    ids: Annotated[
        list[Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]],
        Query(alias="id", min_length=1, max_length=100),
    ],
) -> JSONResponse:
    deleted, errors = 0, []
    for asset_id in dict.fromkeys(ids):
        refusal = await delete_one(service, account, asset_id)
        if refusal:
            errors.append({"id": asset_id, "error": refusal})
        else:
            deleted += 1
    return ok({"itemsDeleted": deleted, "errors": errors})


async def delete_one(service: Service, account: str, asset_id: str) -> str | None:
    """Start removing a complete or errored asset; otherwise say why not."""
    async with service.db.engine.connect() as conn:
        row = await store.get(conn, account, asset_id)
    if row is None or row.status == Status.DELETED.value:
        return "not found"
    if Status(row.status) not in DELETABLE:
        return f"is {row.status}; only complete or error assets can be deleted"
    await removal.remove(service.db, service.storage, row)
    return None


@router.get("/api/v3/account/media/expiration", summary="Read the retention rules")
async def read_rules(account: Account, service: ServiceDep) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        return ok(await store.expiration_rules(conn, account))


@router.put("/api/v3/account/media/expiration", summary="Set the retention rules ({} clears)")
async def set_rules(body: ExpirationRules, account: Account, service: ServiceDep) -> JSONResponse:
    rules = body.model_dump(exclude_none=True)
    async with service.db.transaction() as conn:
        await store.set_expiration_rules(conn, account, rules)
    return ok(rules)


@downloads.get("/media/{mediaAssetId}.{ext}", summary="Download a file through a signed link")
async def download(
    mediaAssetId: AssetId,
    ext: Literal["mp4", "jpg"],
    service: ServiceDep,
    expires: Annotated[int, Query(ge=0, le=MAX_ID)],
    sig: Annotated[str, Query(pattern="^[0-9a-f]{64}$", description="64 lowercase hex.")],
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    async with service.db.transaction() as conn:
        key = await keys.get_or_create(conn, DOWNLOAD_KEY)
        row = await store.get_any(conn, mediaAssetId)
    refusal = links.refusal(key, mediaAssetId, expires, sig, now_ms())
    if refusal:
        raise ApiError(403, refusal)
    if row is None or row.status != Status.COMPLETE.value or not row.file_path:
        raise ApiError(404, "This media file is gone.")
    location = files.files_of(row)[0 if ext == "mp4" else 1]
    media_type = "video/mp4" if ext == "mp4" else "image/jpeg"
    if not location.startswith("s3://"):
        path = pathlib.Path(location)
        # A stat is cheaper than a thread hop.
        if not path.exists():  # noqa: ASYNC240
            raise ApiError(404, "This media file is gone.")
        return FileResponse(path, media_type=media_type, filename=f"{row.id}.{ext}")
    storage = service.storage
    try:
        size = await storage.size(location)
    except Exception as exc:  # the bucket cannot be reached: nothing the caller did wrong
        raise ApiError(503, "The media store cannot be reached; try again shortly.") from exc
    if size is None:
        raise ApiError(404, "This media file is gone.")
    url = await storage.signed_url(location, LINK_TTL)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    return await proxied(storage, location, size, media_type, f"{row.id}.{ext}", range_header)


async def proxied(
    storage: Storage,
    location: str,
    size: int,
    media_type: str,
    filename: str,
    range_header: str | None,
) -> Response:
    """A bucket's file served through the service, with Range."""
    try:
        wanted = ranges.parse(range_header, size)
    except ranges.Unsatisfiable as exc:
        raise ApiError(416, f"Range {range_header!r} is outside the file's {size} bytes.") from exc
    start, end = wanted if wanted is not None else (0, size)
    body = await storage.read(location, start, end)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    if wanted is None:
        return StreamingResponse(body.chunks, media_type=media_type, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(body.chunks, 206, media_type=media_type, headers=headers)
