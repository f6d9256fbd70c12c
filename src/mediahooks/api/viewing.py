"""Who may watch: `/api/subscribe_token` (the platform's viewer tokens), the account's public
playback switch (`/api/v3/account/playback`) and signed playback links
(`POST /api/v3/playback/link`)."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictBool, StrictStr

from mediahooks.actions import playlinks
from mediahooks.actions.bodies import Body
from mediahooks.actions.paging import MAX_ID
from mediahooks.actions.token_fields import StreamRule
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import found, ok
from mediahooks.api.paging import PagingDep
from mediahooks.clock import from_iso, iso, now_ms
from mediahooks.errors import Invalid, NotFound
from mediahooks.media.playback import MAX_RANGE_MS, Grant
from mediahooks.store import playback as playback_store
from mediahooks.store import subscribe_tokens as store
from mediahooks.store.schema import DbRow

router = APIRouter(tags=["playback"])
TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="The token's integer id.")]
Origin = Annotated[str, Field(min_length=1, max_length=256)]
MAX_LINK_SECONDS = 7 * 86_400


class SubscribeTokenCreate(Body):
    model_config = ConfigDict(extra="ignore")
    label: StrictStr = Field(..., min_length=1, max_length=256)
    streams: list[StreamRule] = Field(..., min_length=1, max_length=100)
    allowedOrigins: list[Origin] = Field(default_factory=list, max_length=100)
    expiresOn: datetime | None = None


class SubscribeTokenUpdate(Body):
    model_config = ConfigDict(extra="ignore")
    label: StrictStr | None = Field(None, min_length=1, max_length=256)
    isActive: StrictBool | None = None
    addTokenStreams: list[StreamRule] | None = Field(None, max_length=100)
    removeTokenStreams: list[StrictStr] | None = Field(None, max_length=100)
    allowedOrigins: list[Origin] | None = Field(None, max_length=100)
    expiresOn: datetime | None = None
    refreshToken: StrictBool = False


class PlaybackSettings(Body):
    model_config = ConfigDict(extra="ignore")
    public: StrictBool


class LinkRequest(Body):
    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    startTime: datetime | None = None
    stopTime: datetime | None = None
    ttl: int | None = Field(None, ge=1, le=MAX_LINK_SECONDS, description="Seconds (default 1 h).")


def token_json(row: DbRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "label": row.label,
        "token": row.token,
        "addedOn": iso(row.created_at),
        "expiresOn": iso(row.expires_at),
        "isActive": bool(row.is_active),
        "streams": json.loads(row.streams),
        "allowedOrigins": json.loads(row.allowed_origins),
        "allowedIpAddresses": [],
    }


def _future(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    ms = from_iso(moment)
    if ms <= now_ms():
        raise Invalid("expiresOn must be in the future.", {"expiresOn": ["in the past"]})
    return ms


@router.post("/api/subscribe_token", summary="Create a subscribe token")
async def create_token(
    body: SubscribeTokenCreate, account: Account, service: ServiceDep
) -> JSONResponse:
    values = {
        "label": body.label,
        "streams": json.dumps([rule.model_dump() for rule in body.streams]),
        "allowed_origins": json.dumps(body.allowedOrigins),
        "expires_at": _future(body.expiresOn),
        "is_active": True,
    }
    async with service.db.transaction() as conn:
        return ok(token_json(await store.create(conn, account, values)))


@router.get("/api/subscribe_token/list", summary="List subscribe tokens")
async def list_tokens(account: Account, service: ServiceDep, paging: PagingDep) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        rows = await store.page(conn, account, paging.starting_id, paging.count, paging.descending)
    return ok([token_json(r) for r in rows])


@router.get("/api/subscribe_token/{id:int}", summary="Read a subscribe token")
async def read_token(id: TokenId, account: Account, service: ServiceDep) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        return ok(token_json(found(await store.get(conn, account, id), f"Subscribe token {id}")))


@router.put("/api/subscribe_token/{id:int}", summary="Update a subscribe token")
async def update_token(
    id: TokenId, body: SubscribeTokenUpdate, account: Account, service: ServiceDep
) -> JSONResponse:
    async with service.db.transaction() as conn:
        current = found(await store.get(conn, account, id), f"Subscribe token {id}")
        streams = [
            rule
            for rule in json.loads(current.streams)
            if rule["streamName"] not in (body.removeTokenStreams or [])
        ]
        streams += [rule.model_dump() for rule in body.addTokenStreams or []]
        if not streams:
            raise Invalid(
                "A subscribe token needs at least one stream: add one or delete the token.",
                {"removeTokenStreams": ["would leave no stream"]},
            )
        values: dict[str, Any] = {"streams": json.dumps(streams)}
        if body.label is not None:
            values["label"] = body.label
        if body.isActive is not None:
            values["is_active"] = body.isActive
        if body.allowedOrigins is not None:
            values["allowed_origins"] = json.dumps(body.allowedOrigins)
        if body.expiresOn is not None:
            values["expires_at"] = _future(body.expiresOn)
        if body.refreshToken:
            values["token"] = secrets.token_hex(32)
        row = await store.update_one(conn, account, id, values)
    return ok(token_json(found(row, f"Subscribe token {id}")))


@router.delete("/api/subscribe_token/{id:int}", summary="Delete a subscribe token")
async def delete_token(id: TokenId, account: Account, service: ServiceDep) -> JSONResponse:
    async with service.db.transaction() as conn:
        if not await store.delete(conn, account, id):
            raise NotFound(f"Subscribe token {id} not found.")
    return ok(True)


@router.get("/api/v3/account/playback", summary="Whether anyone may watch unprotected streams")
async def read_playback(account: Account, service: ServiceDep) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        return ok({"public": bool(await playback_store.public(conn, account))})


@router.put("/api/v3/account/playback", summary="Let anyone watch unprotected streams, or not")
async def set_playback(
    body: PlaybackSettings, account: Account, service: ServiceDep
) -> JSONResponse:
    async with service.db.transaction() as conn:
        await playback_store.set_public(conn, account, body.public)
    return ok({"public": body.public})


@router.post("/api/v3/playback/link", summary="A signed, expiring playback link")
async def make_link(
    body: LinkRequest, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    """The live stream's playlist, or (with startTime and stopTime) a past range's, that any
    player can open without credentials until it expires."""
    ttl = body.ttl or service.settings.playback_ttl
    expires = now_ms() + int(ttl * 1000)
    key = await playlinks.key(service)
    base = str(request.base_url)
    if body.startTime is None and body.stopTime is None:
        grant = Grant(account, body.streamName, expires)
        url = playlinks.live_url(base, key, grant)
    elif body.startTime is None or body.stopTime is None:
        raise Invalid(
            "A range needs both startTime and stopTime; give neither for the live stream.",
            {"stopTime" if body.stopTime is None else "startTime": ["is required"]},
        )
    else:
        lo, hi = from_iso(body.startTime), from_iso(body.stopTime)
        if not 0 < hi - lo <= MAX_RANGE_MS:
            raise Invalid(
                "stopTime must be after startTime, by at most 12 h.",
                {"stopTime": ["after startTime, at most 12 h"]},
            )
        grant = Grant(account, body.streamName, expires, lo, hi)
        url = playlinks.range_url(base, key, grant, lo, hi, None)
    return ok({"playbackUrl": url, "playbackExpiresOn": iso(expires)})
