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
from sqlalchemy.exc import IntegrityError
from starlette.convertors import Convertor, register_url_convertor

from mediahooks.api import playlinks
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.bodies import Body
from mediahooks.api.envelope import ApiError, found, ok
from mediahooks.api.paging import MAX_ID
from mediahooks.api.storage_profiles import StorageChoice
from mediahooks.assets import DELETABLE, Status
from mediahooks.clock import from_iso, iso, now_ms
from mediahooks.media import clips, containers, files, links, removal, stills
from mediahooks.media.sweeper import DEFAULT_TIMELINE_DAYS
from mediahooks.service import Service
from mediahooks.storage import Storage, profiles, ranges
from mediahooks.store import assets as store
from mediahooks.store import idempotency, keys, timelines
from mediahooks.store.schema import DbRow


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
AssetStatus = Literal["processing", "complete", "error", "deleting", "deleted"]
AssetType = Literal["clip", "recording", "timeline"]
Sort = Literal["startTime", "stopTime", "streamName", "tokenId", "created"]
DOWNLOAD_KEY = "downloads"
# Files stay in the service's own storage: the platform's name for its own is `dolbyStorage`
# (the one value of its enum that means that), and `path` is only given for external storage.
STORAGE: dict[str, Any] = {"type": "dolbyStorage", "path": None}
DAY_MS = 86_400_000
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


def asset_json(
    row: DbRow,
    download: dict[str, Any] | None = None,
    playback: dict[str, Any] | None = None,
    expiration: int | None = None,
) -> dict[str, Any]:
    """An asset (or a timeline, whose ``expiration`` the caller computes) as the platform
    shapes it; its `metadata.thumbnails` are the signed links to its stills."""
    out: dict[str, Any] = {
        "id": row.id,
        "type": row.type,
        "feed": {"tokenId": row.token_id, "streamName": row.stream_name},
        "startTime": iso(row.start_time),
        "stopTime": iso(row.stop_time),
        "name": row.name,
        "storage": storage_json(row),
        "status": row.status,
        "error": row.error,
        "created": iso(row.created_at),
        "expiration": iso(row.expiration if expiration is None else expiration),
        "removed": iso(row.removed_at),
        "metadata": metadata_json(json.loads(row.metadata), download),
    }
    if download is not None:
        out["download"] = download
    if playback is not None:
        # HLS of the asset's range, playable at once, while the MP4 is still being cut.
        out.update(playback)
    return out


def storage_json(row: DbRow) -> dict[str, Any]:
    """The platform's storage object: the service's own storage, and where in it a file kept in
    a bucket is (`s3://bucket/prefix/media/...`)."""
    out = dict(STORAGE)
    path = row._mapping.get("file_path")  # a timeline's row has none
    if row._mapping.get("storage_profile_id"):
        out["type"] = profiles.TYPE  # the account's own bucket, as the platform says it
    if path and path.startswith("s3://"):
        out["path"] = path
    return out


def metadata_json(stored: dict[str, Any], download: dict[str, Any] | None) -> dict[str, Any]:
    """The platform's `metadata`: `tracks` and `thumbnails` (signed links to the stills, once
    the asset is complete) always there; integers where it has integers. Assets cut before
    this shape (a float `duration`, one `size`, a poster alone) read the same way."""
    out = dict(stored)
    if "size" in out and "sizes" not in out:
        out["sizes"] = {str(out.get("format") or "file"): out.pop("size")}
    if isinstance(out.get("duration"), float):
        out["duration"] = round(out["duration"])
    tracks = [dict(t) for t in out.get("tracks", [])]
    for track in tracks:
        if isinstance(track.get("framerate"), float):
            track["framerate"] = round(track["framerate"])
    out["tracks"] = tracks
    out["thumbnails"] = []
    if download is not None:
        poster, _, query = download["posterUrl"].partition("?")
        count = stills.ASSET_STILLS if "thumbnails" in out.get("sizes", {}) else 1
        base = poster.removesuffix(".jpg")
        out["thumbnails"] = [download["posterUrl"]] + [
            f"{base}/{index}.jpg?{query}" for index in range(1, count)
        ]
    return out


async def download_key(service: Service) -> bytes:
    async with service.db.transaction() as conn:
        return await keys.get_or_create(conn, DOWNLOAD_KEY)


def signed_links(service: Service, base_url: str, row: DbRow, key: bytes) -> dict[str, Any] | None:
    """Signed links to a complete asset's files, valid for the configured time."""
    if row.status != Status.COMPLETE.value or row.type == "timeline":
        return None
    expires = now_ms() + int(service.settings.download_ttl * 1000)
    query = f"expires={expires}&sig={links.signature(key, row.id, expires)}"
    base = base_url.rstrip("/")
    extension = containers.of_asset(json.loads(row.metadata)).name
    return {
        "downloadUrl": f"{base}/media/{row.id}.{extension}?{query}",
        "downloadExpiresOn": iso(expires),
        "posterUrl": f"{base}/media/{row.id}.jpg?{query}",
    }


async def download_links(service: Service, base_url: str, row: DbRow) -> dict[str, Any] | None:
    if row.status != Status.COMPLETE.value:
        return None
    return signed_links(service, base_url, row, await download_key(service))


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
                given = body.storage
                profile = await profiles.choose(
                    conn,
                    account,
                    given.profileId if given else None,
                    given.type if given else None,
                    overrides=bool(given and given.options),
                )
                rows = await clips.request(conn, account, clip, now, links, profile)
            except (clips.ClipRefused, profiles.ProfileError) as exc:
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
    async with service.db.engine.connect() as conn:
        rows = await store.page(conn, account, listing)
        rules = await store.expiration_rules(conn, account)
    key = await download_key(service) if rows else b""
    base = str(request.base_url)
    timeline_ms = int(rules.get("timelines", {}).get("days", DEFAULT_TIMELINE_DAYS)) * DAY_MS
    return ok(
        [
            asset_json(
                r,
                signed_links(service, base, r, key),
                # A timeline lasts until its newest segment expires.
                expiration=r.last_at + timeline_ms if r.type == "timeline" else None,
            )
            for r in rows
        ]
    )


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
    await removal.remove(service.db, service.stores, row)
    return None


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
    if type == "timeline":
        return ok(await delete_timelines(service, account))
    async with service.db.engine.connect() as conn:
        rows = await store.of_type(conn, account, type)
    deleted, errors = 0, []
    for row in rows:
        refusal = await delete_one(service, account, row.id)
        if refusal:
            errors.append({"id": row.id, "error": refusal})
        else:
            deleted += 1
    return ok({"itemsDeleted": deleted, "errors": errors})


async def delete_timelines(service: Service, account: str) -> dict[str, Any]:
    """Forget every segment of the account's ended broadcasts (rows first, as expiry does: a
    clip being cut from them fails cleanly), then their files."""
    async with service.db.transaction() as conn:
        doomed = await timelines.ended_segments(conn, account)
        await timelines.forget_segments(conn, [s.id for s in doomed])
        live = await timelines.live_broadcasts(conn, account)
    await removal.delete_files([PathLib(s.path) for s in doomed])
    errors = [{"id": b.feed_id, "error": "is live; its timeline goes once it ends"} for b in live]
    return {"itemsDeleted": len({s.broadcast_id for s in doomed}), "errors": errors}


# --- the v2 `record_files` routes the platform's current clients still call --------------------

V2_STATUS = {
    "processing": "InProgress",
    "complete": "Complete",
    "error": "Error",
    "deleting": "Deleting",
    "deleted": "Deleted",
}


def record_file_json(row: DbRow, download: dict[str, Any] | None) -> dict[str, Any]:
    """An asset in the shape of the platform's v2 `record_files` answers."""
    out: dict[str, Any] = {
        "id": row.id,
        "status": V2_STATUS[row.status],
        "itemType": "FullRecording" if row.type == "recording" else "Clip",
        "tokenId": row.token_id,
        "streamName": row.stream_name,
        "recordedOn": iso(row.start_time),
        "stoppedOn": iso(row.stop_time),
        "removedOn": iso(row.removed_at),
        "metadata": metadata_json(json.loads(row.metadata), download),
        "error": row.error,
        "storage": {"storageType": "DolbyStorage", "storagePath": None},
    }
    if download is not None:
        out["download"] = download
    return out


@router.get(
    "/api/v2/record_files/{mediaAssetId:asset}",
    summary="Read an asset (the platform's v2 shape, an alias of the v3 read)",
)
async def read_record_file(
    mediaAssetId: AssetId, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        row = found(await store.get(conn, account, mediaAssetId), f"Media asset {mediaAssetId}")
    return ok(record_file_json(row, await download_links(service, str(request.base_url), row)))


@router.delete(
    "/api/v2/record_files/{mediaAssetId:asset}",
    summary="Delete a complete or errored asset (v2); answers true",
)
async def delete_record_file(
    mediaAssetId: AssetId, account: Account, service: ServiceDep
) -> JSONResponse:
    refusal = await delete_one(service, account, mediaAssetId)
    if refusal == "not found":
        raise ApiError(404, f"Media asset {mediaAssetId} not found.")
    if refusal:
        raise ApiError(400, f"Media asset {mediaAssetId} {refusal}.", {"mediaAssetId": [refusal]})
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
    errors = []
    for asset_id in dict.fromkeys(body.mediaAssetIds):
        refusal = await delete_one(service, account, asset_id)
        if refusal:
            errors.append({"mediaAssetId": asset_id, "error": refusal})
    return ok({"errors": errors})


def rules_in_force(stored: dict[str, Any]) -> dict[str, Any]:
    """The retention rules that apply: timelines have a default (recordings and clips are kept
    until a rule or their own `expiration` says otherwise)."""
    return {"timelines": {"days": DEFAULT_TIMELINE_DAYS}} | stored


@router.get(
    "/api/v3/account/media/expiration",
    summary="Read the retention rules in force, defaults included",
)
async def read_rules(account: Account, service: ServiceDep) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        return ok(rules_in_force(await store.expiration_rules(conn, account)))


@router.put(
    "/api/v3/account/media/expiration",
    summary="Set the retention rules ({} clears); answers the rules in force",
)
async def set_rules(body: ExpirationRules, account: Account, service: ServiceDep) -> JSONResponse:
    rules = body.model_dump(exclude_none=True)
    async with service.db.transaction() as conn:
        await store.set_expiration_rules(conn, account, rules)
    return ok(rules_in_force(rules))


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
    async with service.db.transaction() as conn:
        key = await keys.get_or_create(conn, DOWNLOAD_KEY)
        row = await store.get_any(conn, asset_id)
    refusal = links.refusal(key, asset_id, expires, sig, now_ms())
    if refusal:
        raise ApiError(403, refusal)
    if row is None or row.status != Status.COMPLETE.value or not row.file_path:
        raise ApiError(404, "This media file is gone.")
    location = files.files_of(row)[index]
    if index == 0 and containers.of_asset(json.loads(row.metadata)).name != ext:
        raise ApiError(404, f"This media file is not {ext.upper()}: take the link the asset gives.")
    media_type = containers.FORMATS[ext].media_type if index == 0 else "image/jpeg"
    name = f"{row.id}.{ext}" if index < 2 else f"{row.id}.{index - 1}.{ext}"
    if not location.startswith("s3://"):
        path = PathLib(location)
        # A stat is cheaper than a thread hop.
        if not path.exists():  # noqa: ASYNC240
            raise ApiError(404, "This media file is gone.")
        return FileResponse(path, media_type=media_type, filename=name)
    try:
        storage = await service.stores.of(row)  # the service's, or the asset's profile's
        size = await storage.size(location)
    except Exception as exc:  # the bucket cannot be reached: nothing the caller did wrong
        raise ApiError(503, "The media store cannot be reached; try again shortly.") from exc
    if size is None:
        raise ApiError(404, "This media file is gone.")
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
