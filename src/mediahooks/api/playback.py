"""`/play/<accountId>/<streamName>/...`: HLS of every stream, live and any past range, straight
from the stored segments, for players on any origin (CORS).

- `live.m3u8`: the live edge; `range.m3u8?start=..&stop=..|duration=..[&broadcast=id]`: a VOD
  playlist of a past range; `<broadcastId>/<segment>` and `<broadcastId>/init.mp4`: the media.
- What each answers is `actions.playback`'s; who may watch, `media.playback.refusal`'s. A
  playlist's segment URLs carry a signed grant (the one presented, or one made for this
  viewer), so segments need no header and no database check of the viewer; a live playlist's
  also carry the viewer's session id, which counts viewers (`media.viewer_hooks`).

These routes are for players, not API clients: they answer playlists and media, so they stay
out of the OpenAPI document; refusals still come in the envelope, with CORS headers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.routing import APIRoute

from mediahooks.actions import playback as actions
from mediahooks.actions.paging import MAX_ID
from mediahooks.api import viewing
from mediahooks.api.envelope import on_error, on_validation_error
from mediahooks.errors import MediahooksError
from mediahooks.service import Service

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Range",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range",
    "Access-Control-Max-Age": "600",
}
PLAYLIST = "application/vnd.apple.mpegurl"
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class CorsRoute(APIRoute):
    """Every answer, refusals included, carries the CORS headers: a player on another origin
    can read why it was refused."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def with_cors(request: Request) -> Response:
            try:
                response = await handler(request)
            except MediahooksError as exc:
                response = await on_error(request, exc)
            except RequestValidationError as exc:
                response = await on_validation_error(request, exc)
            response.headers.update(CORS)
            return response

        return with_cors


play = APIRouter(
    prefix="/play/{accountId}/{streamName}", route_class=CorsRoute, include_in_schema=False
)

AccountId = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,32}$")]
StreamName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
BroadcastId = Annotated[int, Path(ge=1, le=MAX_ID)]
FileName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Ms = Annotated[int | None, Query(ge=0, le=MAX_ID)]
Sig = Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _link(expires: int | None, sig: str | None, lo: int | None, hi: int | None) -> actions.Link:
    return actions.Link(expires, sig, lo, hi)


def _viewer(request: Request, token: str | None = None) -> actions.Viewer:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    bearer = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    return actions.Viewer(
        token=token,
        bearer=bearer,
        origin=request.headers.get("origin"),
        address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
    )


def _playlist(text: str) -> Response:
    return Response(text, media_type=PLAYLIST, headers={"Cache-Control": "no-cache"})


@play.get("/live.m3u8", summary="The live playlist")
async def live(
    request: Request,
    accountId: AccountId,
    streamName: StreamName,
    token: Annotated[str | None, Query(max_length=128)] = None,
    sid: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    expires: Ms = None,
    sig: Sig = None,
    lo: Ms = None,
    hi: Ms = None,
) -> Response:
    text = await actions.live_playlist(
        _service(request),
        accountId,
        streamName,
        _link(expires, sig, lo, hi),
        _viewer(request, token),
        sid,
    )
    return _playlist(text)


@play.get("/range.m3u8", summary="A VOD playlist of a past range")
async def range_playlist(
    request: Request,
    accountId: AccountId,
    streamName: StreamName,
    start: Annotated[str | None, Query(max_length=64)] = None,
    stop: Annotated[str | None, Query(max_length=64)] = None,
    duration: Annotated[str | None, Query(max_length=32)] = None,
    broadcast: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    token: Annotated[str | None, Query(max_length=128)] = None,
    expires: Ms = None,
    sig: Sig = None,
    lo: Ms = None,
    hi: Ms = None,
) -> Response:
    text = await actions.range_playlist(
        _service(request),
        accountId,
        streamName,
        start,
        stop,
        duration,
        broadcast,
        _link(expires, sig, lo, hi),
        _viewer(request, token),
    )
    return _playlist(text)


@play.get("/{broadcastId}/{fileName}", summary="A segment, or a broadcast's fMP4 init segment")
async def media_file(
    request: Request,
    accountId: AccountId,
    streamName: StreamName,
    broadcastId: BroadcastId,
    fileName: FileName,
    sid: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    expires: Ms = None,
    sig: Sig = None,
    lo: Ms = None,
    hi: Ms = None,
) -> Response:
    found = await actions.media_file(
        _service(request),
        accountId,
        streamName,
        broadcastId,
        fileName,
        _link(expires, sig, lo, hi),
        sid,
    )
    headers = {"Cache-Control": "private, max-age=3600"}
    if found.path is not None:
        return FileResponse(found.path, media_type=found.media_type, headers=headers)
    assert found.body is not None
    headers["Content-Length"] = str(found.body.size)
    return StreamingResponse(found.body.chunks, media_type=found.media_type, headers=headers)


@play.options("/{rest:path}", summary="CORS preflight")
async def preflight(accountId: str, streamName: str, rest: str) -> Response:
    return Response(status_code=204)


# One router for `app.py`, its routes flat: the 405 answer walks routes, not nested routers.
router = APIRouter()
router.routes.extend([*viewing.router.routes, *play.routes])
