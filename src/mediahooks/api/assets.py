"""`/api/v3/media/assets` and `/api/v3/account/media/expiration`: clips, recordings, their files,
and how long they are kept. `/media/<id>.mp4?expires=..&sig=..` (`.webm` for a WebM clip) serves
the signed downloads."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path as PathLib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from pydantic import BeforeValidator, ConfigDict, Field, StrictStr
from starlette.convertors import Convertor, register_url_convertor

from mediahooks.actions import assets as actions
from mediahooks.actions import playlinks
from mediahooks.actions.asset_shapes import asset_json, record_file_json
from mediahooks.actions.assets import AssetStatus, AssetType
from mediahooks.actions.bodies import Body
from mediahooks.actions.paging import MAX_ID
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import ApiError, ok
from mediahooks.api.storage_profiles import StorageChoice
from mediahooks.clock import from_iso, now_ms
from mediahooks.errors import NotFound, Unavailable
from mediahooks.media import clips, containers, stills
from mediahooks.service import Service
from mediahooks.storage import Storage, ranges
from mediahooks.store import assets as store


class AssetIdConvertor(Convertor[str]):
    """`{name:asset}` in a path: 32 lowercase hex, so `/api/v2/record_files/delete` is never
    read as an asset id (and its 405 names only its own methods)."""

    regex = "[0-9a-f]{32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("asset", AssetIdConvertor())

router = APIRouter(tags=["media assets"])
downloads = APIRouter(tags=["downloads"])

AssetId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex.")]
Sort = Literal["startTime", "stopTime", "streamName", "tokenId", "created"]
# A signed link's redirect to the bucket needs to last only as long as the download starts.
LINK_TTL = 300.0


def split_commas(value: Any) -> Any:
    """Array query parameters come repeated (`?type=clip&type=recording`) or comma-joined
    (`?type=clip,recording`), as the platform's clients send them; both are one list."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [
        part for item in items for part in (item.split(",") if isinstance(item, str) else [item])
    ]


StatusFilter = Annotated[
    list[AssetStatus] | None,
    BeforeValidator(split_commas),
    Query(description="Repeated or comma-joined; default processing and complete."),
]
TypeFilter = Annotated[
    list[AssetType] | None,
    BeforeValidator(split_commas),
    Query(description="Repeated or comma-joined; default clip and recording."),
]


class ClipBody(Body):
    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    startTime: datetime
    stopTime: datetime | None = None
    tokenId: int | None = Field(None, ge=1, le=MAX_ID)
    name: StrictStr | None = Field(None, min_length=1, max_length=256)
    expiration: datetime | None = None
    storage: StorageChoice | None = None  # a storage profile for the clip's file


class Days(Body):
    model_config = ConfigDict(extra="ignore")
    days: int = Field(..., ge=1, le=365)


class ExpirationRules(Body):
    model_config = ConfigDict(extra="ignore")
    timelines: Days | None = None
    recordings: Days | None = None
    clips: Days | None = None


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
    given = body.storage
    storage = (
        actions.StorageWish(given.profileId, given.type, bool(given.options)) if given else None
    )
    base = str(request.base_url)
    data = await actions.request_clip(service, account, clip, base, now, idempotency_key, storage)
    return ok(data)


@router.get("/api/v3/media/assets", summary="List clips and recordings")
async def list_assets(
    account: Account,
    service: ServiceDep,
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    sort: Sort = "startTime",
    desc: bool = False,
    status: StatusFilter = None,
    type: TypeFilter = None,
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
    rows, rules = await actions.page(service, account, listing)
    key = await actions.download_key(service) if rows else b""
    base = str(request.base_url)
    return ok(
        [
            asset_json(
                r,
                actions.signed_links(service, base, r, key),
                expiration=actions.timeline_expiry(r, rules) if r.type == "timeline" else None,
            )
            for r in rows
        ]
    )


@router.get("/api/v3/media/assets/{mediaAssetId}", summary="Read an asset and its download link")
async def read_asset(
    mediaAssetId: AssetId, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    row = await actions.get(service, account, mediaAssetId)
    base = str(request.base_url)
    playback = await playlinks.for_asset(service, base, row)
    return ok(asset_json(row, await actions.download_links(service, base, row), playback))


@router.delete("/api/v3/media/assets", summary="Delete complete or errored assets")
async def delete_assets(
    account: Account,
    service: ServiceDep,
    ids: Annotated[
        list[Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]],
        Query(alias="id", min_length=1, max_length=100),
    ],
) -> JSONResponse:
    refused = await actions.delete_many(service, account, ids)
    errors = [{"id": asset_id, "error": reason} for asset_id, reason in refused]
    return ok({"itemsDeleted": len(dict.fromkeys(ids)) - len(refused), "errors": errors})


@router.delete(
    "/api/v3/media/assets/all/{type}",
    summary="Delete every asset of one type",
    description=(
        "Clips or recordings: every one that is complete or errored is removed (a `deleted` "
        "hook each); those still processing are listed in `errors`. Timelines: every segment "
        "of every ended broadcast; a live one is listed in `errors`."
    ),
)
async def delete_all(
    type: Annotated[AssetType, Path(description="clip, recording or timeline")],
    account: Account,
    service: ServiceDep,
) -> JSONResponse:
    return ok(await actions.delete_all(service, account, type))


# --- the v2 `record_files` routes the platform's current clients still call --------------------


@router.get(
    "/api/v2/record_files/{mediaAssetId:asset}",
    summary="Read an asset (the platform's v2 shape, an alias of the v3 read)",
)
async def read_record_file(
    mediaAssetId: AssetId, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    row = await actions.get(service, account, mediaAssetId, deleted=True)
    base = str(request.base_url)
    return ok(record_file_json(row, await actions.download_links(service, base, row)))


@router.delete(
    "/api/v2/record_files/{mediaAssetId:asset}",
    summary="Delete a complete or errored asset (v2); answers true",
)
async def delete_record_file(
    mediaAssetId: AssetId, account: Account, service: ServiceDep
) -> JSONResponse:
    await actions.delete(service, account, mediaAssetId)
    return ok(True)


class RecordFilesDelete(Body):
    model_config = ConfigDict(extra="ignore")
    mediaAssetIds: list[Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]] = Field(
        ..., min_length=1, max_length=1000
    )


@router.post(
    "/api/v2/record_files/delete",
    summary="Delete complete or errored assets (v2); `errors` lists those that were not",
)
async def delete_record_files(
    body: RecordFilesDelete, account: Account, service: ServiceDep
) -> JSONResponse:
    refused = await actions.delete_many(service, account, body.mediaAssetIds)
    return ok({"errors": [{"mediaAssetId": i, "error": reason} for i, reason in refused]})


@router.get(
    "/api/v3/account/media/expiration",
    summary="Read the retention rules in force, defaults included",
)
async def read_rules(account: Account, service: ServiceDep) -> JSONResponse:
    return ok(await actions.rules(service, account))


@router.put(
    "/api/v3/account/media/expiration",
    summary="Set the retention rules ({} clears); answers the rules in force",
)
async def set_rules(body: ExpirationRules, account: Account, service: ServiceDep) -> JSONResponse:
    return ok(await actions.set_rules(service, account, body.model_dump(exclude_none=True)))


@downloads.get(
    "/media/{mediaAssetId}/{still}.jpg",
    summary="Download a still of an asset through a signed link",
)
async def download_still(
    mediaAssetId: AssetId,
    still: Annotated[int, Path(ge=1, lt=stills.ASSET_STILLS)],
    service: ServiceDep,
    expires: Annotated[int, Query(ge=0, le=MAX_ID)],
    sig: Annotated[str, Query(pattern="^[0-9a-f]{64}$", description="64 lowercase hex.")],
) -> Response:
    return await _signed_file(service, mediaAssetId, expires, sig, 1 + still, "jpg")


@downloads.get("/media/{mediaAssetId}.{ext}", summary="Download a file through a signed link")
async def download(
    mediaAssetId: AssetId,
    ext: Literal["mp4", "webm", "jpg"],
    service: ServiceDep,
    expires: Annotated[int, Query(ge=0, le=MAX_ID)],
    sig: Annotated[str, Query(pattern="^[0-9a-f]{64}$", description="64 lowercase hex.")],
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    index = 1 if ext == "jpg" else 0
    return await _signed_file(service, mediaAssetId, expires, sig, index, ext, range_header)


async def _signed_file(
    service: Service,
    asset_id: str,
    expires: int,
    sig: str,
    index: int,
    ext: str,
    range_header: str | None = None,
) -> Response:
    """File ``index`` of `files.files_of` (the media, then the stills), if the link holds."""
    row, location = await actions.signed_file(service, asset_id, expires, sig, index)
    if index == 0 and containers.of_asset(json.loads(row.metadata)).name != ext:
        raise NotFound(f"This media file is not {ext.upper()}: take the link the asset gives.")
    media_type = containers.FORMATS[ext].media_type if index == 0 else "image/jpeg"
    name = f"{row.id}.{ext}" if index < 2 else f"{row.id}.{index - 1}.{ext}"
    if not location.startswith("s3://"):
        path = PathLib(location)
        # A stat is cheaper than a thread hop.
        if not path.exists():  # noqa: ASYNC240
            raise NotFound("This media file is gone.")
        return FileResponse(path, media_type=media_type, filename=name)
    try:
        storage = await service.stores.of(row)  # the service's, or the asset's profile's
        size = await storage.size(location)
    except Exception as exc:  # the bucket cannot be reached: nothing the caller did wrong
        raise Unavailable("The media store cannot be reached; try again shortly.") from exc
    if size is None:
        raise NotFound("This media file is gone.")
    url = await storage.signed_url(location, LINK_TTL)
    if url is not None:
        # The bytes come straight from the bucket, for a few minutes.
        return RedirectResponse(url, status_code=307)
    return await proxied(storage, location, size, media_type, name, range_header)


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
