"""`/api/publish_token`: the tokens publishers present, and which streams each may publish."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictBool, StrictStr, model_validator

from mediahooks import patterns
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.bodies import Body
from mediahooks.api.envelope import ApiError, found, ok
from mediahooks.api.paging import MAX_ID, PagingDep
from mediahooks.clock import iso
from mediahooks.ingest import streamid
from mediahooks.ingest.rtmp_url import APP
from mediahooks.store import tokens as store
from mediahooks.store.schema import DbRow

router = APIRouter(prefix="/api/publish_token", tags=["publish tokens"])
# What libsrt takes as a passphrase (SRTO_PASSPHRASE), in characters that survive a URL query.
PASSPHRASE = r"^[\x21-\x7e]{10,79}$"
TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="The token's integer id.")]


class StreamRule(Body):
    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    isRegex: StrictBool = False

    @model_validator(mode="after")
    def _regex_compiles(self) -> StreamRule:
        if self.isRegex:
            # The engine that runs the rule at ingest (`store.tokens.allows`).
            reason = patterns.problem(self.streamName)
            if reason:
                raise ValueError(f"streamName {reason}")
        return self


class TokenFields(Body):
    model_config = ConfigDict(extra="ignore")
    label: StrictStr | None = Field(None, min_length=1, max_length=256)
    streams: list[StreamRule] | None = Field(None, min_length=1, max_length=100)
    record: StrictBool | None = None
    clip: StrictBool | None = None
    # Viewers need a subscribe token (or a signed playback link) to watch.
    subscribeRequiresAuth: StrictBool | None = None
    # `thumbnail` hooks while its streams are live.
    enableThumbnails: StrictBool | None = None
    # SRT callers must encrypt with this passphrase; null (on update) removes it.
    srtPassphrase: StrictStr | None = Field(
        None,
        pattern=PASSPHRASE,
        description="10-79 printable ASCII characters, no spaces; null removes it",
    )
    # The platform's switch: true makes a passphrase when the token has none, false removes it.
    displaySrtPassphrase: StrictBool | None = None

    @model_validator(mode="after")
    def _one_passphrase_intent(self) -> TokenFields:
        if self.displaySrtPassphrase is False and self.srtPassphrase is not None:
            raise ValueError(
                "displaySrtPassphrase false removes the passphrase: send one or the other"
            )
        return self

    def columns(self) -> dict[str, Any]:
        values = self.model_dump(
            exclude_unset=True,
            exclude_none=True,
            exclude={"streams", "srtPassphrase", "displaySrtPassphrase"},
        )
        if "subscribeRequiresAuth" in values:
            values["subscribe_requires_auth"] = values.pop("subscribeRequiresAuth")
        if "enableThumbnails" in values:
            values["enable_thumbnails"] = values.pop("enableThumbnails")
        if self.streams is not None:
            values["streams"] = json.dumps([rule.model_dump() for rule in self.streams])
        if "srtPassphrase" in self.model_fields_set:
            values["srt_passphrase"] = self.srtPassphrase
        elif self.displaySrtPassphrase is False:
            values["srt_passphrase"] = None
        return values

    def passphrase_wanted(self, current: str | None) -> str | None:
        """A passphrase to make: asked for with displaySrtPassphrase and none given or held."""
        if self.displaySrtPassphrase and self.srtPassphrase is None and not current:
            return secrets.token_urlsafe(24)
        return None


class TokenCreate(TokenFields):
    label: StrictStr = Field(..., min_length=1, max_length=256)
    streams: list[StreamRule] = Field(..., min_length=1, max_length=100)


def token_json(
    row: DbRow, base_url: str, rtmp_server: str | None = None, srt_server: str | None = None
) -> dict[str, Any]:
    streams = json.loads(row.streams)
    example = next((s["streamName"] for s in streams if not s["isRegex"]), "mystream")
    ingest = f"{base_url}/ingest/{example}/index.m3u8"
    answer = {
        "id": row.id,
        "label": row.label,
        "token": row.token,
        "addedOn": iso(row.created_at),
        "isActive": True,
        "streams": streams,
        "record": bool(row.record),
        "clip": bool(row.clip),
        "subscribeRequiresAuth": bool(row.subscribe_requires_auth),
        "enableThumbnails": bool(row.enable_thumbnails),
        "displaySrtPassphrase": row.srt_passphrase is not None,
        "srtPassphrase": row.srt_passphrase,
        "publish": {
            "url": ingest,
            "command": (
                "ffmpeg -re -i <input> -c:v libx264 -g 30 -c:a aac -f hls -hls_time 1 "
                f"-method PUT -headers 'Authorization: Bearer {row.token}' "
                f"-hls_flags program_date_time {ingest}"
            ),
        },
    }
    if rtmp_server is not None:
        answer["publish"]["rtmp"] = _rtmp_json(rtmp_server, example, row.token)
    if srt_server is not None:
        answer["publish"]["srt"] = _srt_json(srt_server, example, row.token, row.srt_passphrase)
    return answer


def _rtmp_json(server: str, stream: str, token: str) -> dict[str, str]:
    """The whole URL for ffmpeg and GStreamer, and the two halves OBS asks for."""
    key = f"{stream}?token={token}"
    url = f"{server}/{key}"
    return {
        "url": url,
        "server": server,
        "streamKey": key,
        "command": (f"ffmpeg -re -i <input> -c:v libx264 -g 60 -bf 0 -c:a aac -f flv '{url}'"),
    }


def _srt_json(server: str, stream: str, token: str, passphrase: str | None) -> dict[str, str]:
    """The platform's forms: one URL for tools with a single field, and server + stream ID for
    encoders (OBS's SRT output takes the URL; hardware encoders the two halves)."""
    sid = streamid.compose(stream, token, encrypted=passphrase is not None)
    url = f"{server}?streamid={streamid.quote_streamid(sid)}"
    answer = {"url": url, "server": server, "streamId": sid}
    full = url
    if passphrase is not None:
        answer["passphrase"] = passphrase
        full += f"&passphrase={streamid.quote_streamid(passphrase)}&pbkeylen=16"
    answer["command"] = (
        f"ffmpeg -re -i <input> -c:v libx264 -g 60 -bf 0 -c:a aac -f mpegts '{full}'"
    )
    return answer


def _door_host(request: Request, service: ServiceDep, bound: str | None) -> str:
    """The host publishers reach, by the host name this request came to (the door's address
    when it is a specific one)."""
    host = bound
    if not host or host in ("0.0.0.0", "::"):
        host = request.url.hostname or service.settings.host
    return f"[{host}]" if ":" in host else host


def _srt_server(request: Request, service: ServiceDep) -> str | None:
    if service.srt is None:
        return None
    host = _door_host(request, service, service.settings.srt_host)
    return f"srt://{host}:{service.srt.port}"


def _rtmp_server(request: Request, service: ServiceDep) -> str | None:
    """The RTMP server publishers reach, by the host name this request came to (the RTMP
    address when it is a specific one)."""
    if service.rtmp is None:
        return None
    settings = service.settings
    scheme = "rtmps" if settings.rtmp_cert else "rtmp"
    host = _door_host(request, service, settings.rtmp_host)
    return f"{scheme}://{host}:{service.rtmp.port}/{APP}"


def _json(row: DbRow, request: Request, service: ServiceDep) -> dict[str, Any]:
    rtmp, srt = _rtmp_server(request, service), _srt_server(request, service)
    return token_json(row, _base(request), rtmp, srt)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _check_flags(record: bool | None, clip: bool | None) -> None:
    if record and clip:
        raise ApiError(
            400,
            "A token cannot both record and clip: make one token for each.",
            {"record": ["cannot be true together with clip"]},
        )


async def _found(service: ServiceDep, account: str, token_id: int) -> DbRow:
    async with service.db.engine.connect() as conn:
        return found(await store.get(conn, account, token_id), f"Publish token {token_id}")


@router.post("", summary="Create a publish token")
async def create_token(
    body: TokenCreate, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    _check_flags(body.record, body.clip)
    values = {"record": False, "clip": False, **body.columns()}
    made = body.passphrase_wanted(None)
    if made:
        values["srt_passphrase"] = made
    async with service.db.transaction() as conn:
        row = await store.create(conn, account, values)
    service.known_tokens.learn(row)  # SRT callers with it are let in at once
    return ok(_json(row, request, service))


@router.get("/list", summary="List publish tokens")
async def list_tokens(
    request: Request,
    account: Account,
    service: ServiceDep,
    paging: PagingDep,
) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        rows = await store.page(conn, account, paging.starting_id, paging.count, paging.descending)
    return ok([_json(r, request, service) for r in rows])


@router.get("/{id:int}", summary="Read a publish token")
async def read_token(
    id: TokenId, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    row = await _found(service, account, id)
    return ok(_json(row, request, service))


@router.put("/{id:int}", summary="Update a publish token")
async def update_token(
    id: TokenId, body: TokenFields, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    current = await _found(service, account, id)
    record = body.record if body.record is not None else current.record
    clip = body.clip if body.clip is not None else current.clip
    _check_flags(record, clip)
    values = body.columns()
    made = body.passphrase_wanted(current.srt_passphrase)
    if made:
        values["srt_passphrase"] = made
    async with service.db.transaction() as conn:
        row = found(await store.update_one(conn, account, id, values), f"Publish token {id}")
    service.known_tokens.learn(row)
    return ok(_json(row, request, service))


@router.delete("/{id:int}", summary="Delete a publish token")
async def delete_token(id: TokenId, account: Account, service: ServiceDep) -> JSONResponse:
    async with service.db.transaction() as conn:
        deleted = await store.delete(conn, account, id)
    if not deleted:
        raise ApiError(404, f"Publish token {id} not found.")
    return ok(True)
