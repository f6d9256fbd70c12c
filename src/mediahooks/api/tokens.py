"""`/api/publish_token`: the tokens publishers present, which streams each may publish, and
who may use it from where (`admission`). The platform's v1 routes, and its v2 update."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from mediahooks.actions import token_fields as fields
from mediahooks.actions import tokens as actions
from mediahooks.actions.bodies import Body
from mediahooks.actions.paging import MAX_ID
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import ok
from mediahooks.errors import Invalid
from mediahooks.ingest import streamid
from mediahooks.ingest.rtmp_url import APP
from mediahooks.media.ingest import STREAM_NAME
from mediahooks.store import tokens as store
from mediahooks.store.schema import DbRow

# Operation ids as the platform's document names them: a client generated from either works
# against both.
router = APIRouter(tags=["publish tokens"])
TokenId = Annotated[int, Path(ge=1, le=MAX_ID, description="The token's integer id.")]
Page = Annotated[int, Query(ge=1, le=fields.INT32, description="The page, from 1.")]
ItemsOnPage = Annotated[int, Query(ge=1, le=100, description="Tokens per page.")]
SortBy = Annotated[store.SortBy, Query(description="Name (the label) or AddedOn; then id.")]
IsDescending = Annotated[bool, Query(description="Reverse the order.")]
StreamId = re.compile(r"(?P<account>[^/]+)/(?P<stream>.+)")


class DisableRequest(Body):
    model_config = ConfigDict(extra="ignore")
    tokenIds: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        ..., min_length=1, max_length=100
    )


def token_json(
    row: DbRow, base_url: str, rtmp_server: str | None = None, srt_server: str | None = None
) -> dict[str, Any]:
    answer = fields.token_object(row)
    example = next((s["streamName"] for s in answer["streams"] if not s["isRegex"]), "mystream")
    if not STREAM_NAME.fullmatch(example):
        example = "mystream"
    ingest = f"{base_url}/ingest/{example}/index.m3u8"
    answer["publish"] = {
        "url": ingest,
        "command": (
            "ffmpeg -re -i <input> -c:v libx264 -g 30 -c:a aac -f hls -hls_time 1 "
            f"-method PUT -headers 'Authorization: Bearer {row.token}' "
            f"-hls_flags program_date_time {ingest}"
        ),
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


def _rtmp_server(request: Request, service: ServiceDep) -> str | None:
    if service.rtmp is None:
        return None
    scheme = "rtmps" if service.settings.rtmp_cert else "rtmp"
    host = _door_host(request, service, service.settings.rtmp_host)
    return f"{scheme}://{host}:{service.rtmp.port}/{APP}"


def _srt_server(request: Request, service: ServiceDep) -> str | None:
    if service.srt is None:
        return None
    host = _door_host(request, service, service.settings.srt_host)
    return f"srt://{host}:{service.srt.port}"


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _answer(request: Request, service: ServiceDep, rows: list[DbRow]) -> list[dict[str, Any]]:
    rtmp, srt = _rtmp_server(request, service), _srt_server(request, service)
    return [token_json(row, _base(request), rtmp, srt) for row in rows]


@router.post(
    "/api/publish_token",
    summary="Create a publish token",
    operation_id="PublishTokenV1_CreateToken",
)
async def create_token(
    body: fields.TokenCreate, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    row = await actions.create(service, account, body)
    return ok(_answer(request, service, [row])[0])


@router.get(
    "/api/publish_token/list",
    summary="List publish tokens",
    operation_id="PublishTokenV1_ListTokens",
)
async def list_tokens(
    request: Request,
    account: Account,
    service: ServiceDep,
    page: Page = 1,
    itemsOnPage: ItemsOnPage = 10,
    sortBy: SortBy = "Name",
    isDescending: IsDescending = False,
) -> JSONResponse:
    """A page of tokens; past the last page the list is empty."""
    rows = await actions.page(service, account, sortBy, isDescending, page, itemsOnPage)
    return ok(_answer(request, service, rows))


@router.get(
    "/api/publish_token/list_by_name",
    summary="List publish tokens by name",
    operation_id="PublishTokenV1_ListTokensByName",
)
async def list_tokens_by_name(
    request: Request,
    account: Account,
    service: ServiceDep,
    name: Annotated[str, Query(min_length=1, max_length=256, description="Part of a name.")],
    filterBy: Annotated[store.FilterBy, Query(description="Where to look for it.")] = (
        "TokenOrStreamName"
    ),
    page: Page = 1,
    itemsOnPage: ItemsOnPage = 10,
    sortBy: SortBy = "Name",
    isDescending: IsDescending = False,
) -> JSONResponse:
    """Tokens whose label, or one of whose stream names (not patterns), holds `name`,
    ignoring case."""
    rows = await actions.page(
        service, account, sortBy, isDescending, page, itemsOnPage, name, filterBy
    )
    return ok(_answer(request, service, rows))


@router.get(
    "/api/publish_token/active",
    summary="The publish token of a live stream",
    operation_id="PublishTokenV1_GetActiveTokenByStreamId",
)
async def active_token(
    account: Account,
    service: ServiceDep,
    streamId: Annotated[
        str, Query(min_length=3, max_length=200, description="accountId/streamName")
    ],
) -> JSONResponse:
    """`{"tokenIds": [id]}` while the stream is live, else an empty list."""
    parts = StreamId.fullmatch(streamId)
    if parts is None:
        raise Invalid(
            f"streamId is <accountId>/<streamName>, e.g. {account}/mystream.",
            {"streamId": ["not <accountId>/<streamName>"]},
        )
    if parts["account"] != account:
        return ok({"tokenIds": []})  # another account's streams are none of this one's
    return ok({"tokenIds": await actions.live_ids(service, account, parts["stream"])})


@router.get(
    "/api/publish_token/active/all",
    summary="The publish tokens of all live streams",
    operation_id="PublishTokenV1_GetAllActiveTokensByAccount",
)
async def active_tokens(account: Account, service: ServiceDep) -> JSONResponse:
    return ok({"tokenIds": await actions.live_ids(service, account)})


@router.patch(
    "/api/publish_token/disable",
    summary="Disable publish tokens",
    operation_id="PublishTokenV1_DisableTokens",
)
async def disable_tokens(
    body: DisableRequest, account: Account, service: ServiceDep
) -> JSONResponse:
    """Set `isActive` false on each token: it publishes nothing more (an RTMP publisher live
    with it is stopped)."""
    wanted = list(dict.fromkeys(body.tokenIds))
    done = await actions.disable(service, account, wanted)
    return ok(
        {
            "successfulTokens": done,
            "failedTokens": [
                {"tokenId": token_id, "errorMessage": f"Publish token {token_id} not found."}
                for token_id in wanted
                if token_id not in done
            ],
        }
    )


@router.get(
    "/api/publish_token/{id:int}",
    summary="Read a publish token",
    operation_id="PublishTokenV1_ReadToken",
)
async def read_token(
    id: TokenId, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    return ok(_answer(request, service, [await actions.get(service, account, id)])[0])


@router.put(
    "/api/publish_token/{id:int}",
    summary="Update a publish token",
    operation_id="PublishTokenV1_UpdateToken",
)
async def update_token(
    id: TokenId, body: fields.TokenUpdate, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    """Any field of the token, by its v2 name or its v1 `update...` name; `addTokenStreams`,
    `removeTokenStreams`; `refreshToken: true` gives it a new value (the old one stops
    working at once)."""
    return await _update(id, body, request, account, service)


@router.put(
    "/api/v2/publish_token/{id:int}",
    summary="Update a publish token (v2)",
    operation_id="PublishTokenV2_UpdateToken",
)
async def update_token_v2(
    id: TokenId, body: fields.TokenUpdate, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    """The platform's v2 update: the same fields and answer as the v1 route."""
    return await _update(id, body, request, account, service)


async def _update(
    token_id: int,
    body: fields.TokenUpdate,
    request: Request,
    account: str,
    service: ServiceDep,
) -> JSONResponse:
    row = await actions.update(service, account, token_id, body)
    return ok(_answer(request, service, [row])[0])


@router.delete(
    "/api/publish_token/{id:int}",
    summary="Delete a publish token",
    operation_id="PublishTokenV1_DeleteToken",
)
async def delete_token(id: TokenId, account: Account, service: ServiceDep) -> JSONResponse:
    await actions.delete(service, account, id)
    return ok(True)
