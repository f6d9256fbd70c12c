"""Who may watch: `/api/subscribe_token` (the platform's viewer tokens), the account's public
playback switch (`/api/v3/account/playback`) and signed playback links
(`POST /api/v3/playback/link`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictBool, StrictStr

from mediahooks.actions import playback, playlinks
from mediahooks.actions import subscribe_tokens as actions
from mediahooks.actions.bodies import Body
from mediahooks.actions.paging import MAX_ID
from mediahooks.actions.subscribe_tokens import SubscribeTokenCreate, SubscribeTokenUpdate
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import ok
from mediahooks.api.paging import PagingDep

router = APIRouter(tags=["playback"])
TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="The token's integer id.")]
MAX_LINK_SECONDS = 7 * 86_400


class PlaybackSettings(Body):
    model_config = ConfigDict(extra="ignore")
    public: StrictBool


class LinkRequest(Body):
    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    startTime: datetime | None = None
    stopTime: datetime | None = None
    ttl: int | None = Field(None, ge=1, le=MAX_LINK_SECONDS, description="Seconds (default 1 h).")


@router.post("/api/subscribe_token", summary="Create a subscribe token")
async def create_token(
    body: SubscribeTokenCreate, account: Account, service: ServiceDep
) -> JSONResponse:
    return ok(actions.token_object(await actions.create(service, account, body)))


@router.get("/api/subscribe_token/list", summary="List subscribe tokens")
async def list_tokens(account: Account, service: ServiceDep, paging: PagingDep) -> JSONResponse:
    rows = await actions.page(service, account, paging.starting_id, paging.count, paging.descending)
    return ok([actions.token_object(r) for r in rows])


@router.get("/api/subscribe_token/{id:int}", summary="Read a subscribe token")
async def read_token(id: TokenId, account: Account, service: ServiceDep) -> JSONResponse:
    return ok(actions.token_object(await actions.get(service, account, id)))


@router.put("/api/subscribe_token/{id:int}", summary="Update a subscribe token")
async def update_token(
    id: TokenId, body: SubscribeTokenUpdate, account: Account, service: ServiceDep
) -> JSONResponse:
    return ok(actions.token_object(await actions.update(service, account, id, body)))


@router.delete("/api/subscribe_token/{id:int}", summary="Delete a subscribe token")
async def delete_token(id: TokenId, account: Account, service: ServiceDep) -> JSONResponse:
    await actions.delete(service, account, id)
    return ok(True)


@router.get("/api/v3/account/playback", summary="Whether anyone may watch unprotected streams")
async def read_playback(account: Account, service: ServiceDep) -> JSONResponse:
    return ok({"public": await playback.is_public(service, account)})


@router.put("/api/v3/account/playback", summary="Let anyone watch unprotected streams, or not")
async def set_playback(
    body: PlaybackSettings, account: Account, service: ServiceDep
) -> JSONResponse:
    return ok({"public": await playback.set_public(service, account, body.public)})


@router.post("/api/v3/playback/link", summary="A signed, expiring playback link")
async def make_link(
    body: LinkRequest, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    """The live stream's playlist, or (with startTime and stopTime) a past range's, that any
    player can open without credentials until it expires."""
    base = str(request.base_url)
    found = await playlinks.link(
        service, base, account, body.streamName, body.startTime, body.stopTime, body.ttl
    )
    return ok(found)
