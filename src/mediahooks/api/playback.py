"""`/play/<accountId>/<streamName>/...`: HLS of every stream, live and any past range, straight
from the stored segments, for players on any origin (CORS).

- `live.m3u8`: the live edge; `range.m3u8?start=..&stop=..|duration=..[&broadcast=id]`: a VOD
  playlist of a past range; `<broadcastId>/<segment>` and `<broadcastId>/init.mp4`: the media.
- Who may watch: `media.playback.refusal`. A playlist's segment URLs carry a signed grant
  (the one presented, or one made for this viewer), so segments need no header and no
  database check of the viewer; a live playlist's also carry the viewer's session id, which
  counts viewers (`media.viewer_hooks`).

These routes are for players, not API clients: they answer playlists and media, so they stay
out of the OpenAPI document; refusals still come in the envelope, with CORS headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.routing import APIRoute

from mediahooks.actions import playlinks
from mediahooks.actions.paging import MAX_ID
from mediahooks.api import viewing
from mediahooks.api.envelope import ApiError, on_error, on_validation_error
from mediahooks.clock import now_ms
from mediahooks.errors import (
    Forbidden,
    Invalid,
    MediahooksError,
    NotFound,
    Unauthorized,
    Unavailable,
)
from mediahooks.media import containers, playback
from mediahooks.media.playback import Access, Grant, RangeRefused
from mediahooks.media.viewer_hooks import ViewerHooks
from mediahooks.service import Service
from mediahooks.storage import segments
from mediahooks.store import playback as store
from mediahooks.store import subscribe_tokens, tokens

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Range",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range",
    "Access-Control-Max-Age": "600",
}
PLAYLIST = "application/vnd.apple.mpegurl"
MEDIA_TYPES = {".ts": "video/mp2t", ".m4s": "video/iso.segment", ".mp4": "video/mp4"}
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


def _viewers(request: Request) -> ViewerHooks:
    """This process's viewer counter (`Service.viewers`)."""
    return _service(request).viewers


async def _grant(
    request: Request,
    account: str,
    stream: str,
    expires: int | None,
    sig: str | None,
    lo: int | None,
    hi: int | None,
) -> Grant | None:
    """The signed grant the request carries, checked; None when it carries none."""
    if sig is None and expires is None:
        return None
    if sig is None or expires is None:
        raise Forbidden("A playback link needs both expires and sig: use it unchanged.")
    if (lo is None) != (hi is None):
        raise Forbidden("A playback link's lo and hi come together: use it unchanged.")
    grant = Grant(account, stream, expires, lo, hi)
    refusal = grant.refusal(await playlinks.key(_service(request)), sig, now_ms())
    if refusal:
        raise Forbidden(refusal)
    return grant


def _presented_token(request: Request, token: str | None) -> str | None:
    if token:
        return token
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def _check_token(request: Request, account: str, stream: str, token: str) -> int | None:
    """A subscribe token valid for the stream: returns when it expires (None: never)."""
    async with _service(request).db.engine.connect() as conn:
        row = await subscribe_tokens.by_token(conn, account, token)
    if row is None or not row.is_active:
        raise Forbidden("Unknown or inactive subscribe token.")
    if row.expires_at is not None and row.expires_at <= now_ms():
        raise Forbidden("This subscribe token has expired.")
    if not tokens.allows(row, stream):
        raise Forbidden(f"This subscribe token does not allow the stream {stream!r}.")
    origin = request.headers.get("origin")
    origins = json.loads(row.allowed_origins)
    if origin and origins and origin not in origins:
        raise Forbidden(f"This subscribe token may not be used from {origin}.")
    expires: int | None = row.expires_at
    return expires


async def _authorize(
    request: Request,
    account: str,
    stream: str,
    token_ids: set[int],
    presented: Grant | None,
    token: str | None,
    lasts_ms: int,
) -> Grant:
    """Refuse the viewer, or return the grant its playlist's segment URLs carry."""
    service = _service(request)
    async with service.db.engine.connect() as conn:
        public = await store.public(conn, account)
        if public is None:
            raise NotFound(f"No account {account!r}.")
        protected = await store.protected(conn, account, stream, token_ids)
    token = _presented_token(request, token)
    token_expires = None
    if presented is None and token is not None:
        token_expires = await _check_token(request, account, stream, token)
    access = Access(protected, public, presented is not None, token is not None)
    refused = playback.refusal(access)
    if refused:
        raise ApiError(*refused)
    if presented is not None:
        return presented
    expires = now_ms() + int(service.settings.playback_ttl * 1000) + lasts_ms
    if token_expires is not None:
        expires = min(expires, token_expires)
    return Grant(account, stream, expires)


def _covered(grant: Grant, start_ms: int | None, duration_ms: int | None) -> bool:
    # An untimed segment is in no playlist yet: nothing to refuse it by.
    return start_ms is None or grant.covers(start_ms, start_ms + (duration_ms or 0))


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
    presented = await _grant(request, accountId, streamName, expires, sig, lo, hi)
    if presented is not None and presented.lo is not None:
        raise Forbidden("This playback link is for a past range, not the live stream.")
    service = _service(request)
    async with service.db.engine.connect() as conn:
        latest = await store.latest(conn, accountId, streamName)
    ids = set() if latest is None else {int(latest.token_id)}
    grant = await _authorize(request, accountId, streamName, ids, presented, token, 0)
    key = (accountId, streamName)
    viewers = _viewers(request)
    if latest is None or latest.ended_at is not None:
        viewers.attempted(key)
    async with service.db.engine.connect() as conn:
        newest = (
            []
            if latest is None
            else await store.newest_segments(conn, latest.id, service.settings.live_window)
        )
    if latest is None or not newest:
        state = "has not started" if latest is None or latest.ended_at is None else "has ended"
        raise NotFound(f"The stream {streamName!r} {state}: nothing to play yet.")
    _playable(latest)
    query = grant.query(await playlinks.key(service))
    if latest.ended_at is None:
        session = playback.session_id(
            sid,
            request.client.host if request.client else "",
            request.headers.get("user-agent", ""),
        )
        viewers.seen(key, session)
        query["sid"] = session
    text = playback.live_playlist(
        latest.id,
        latest.kind == "fmp4",
        newest,
        query,
        latest.ended_at is not None,
        service.settings.live_window,
    )
    return _playlist(text)


def _playable(broadcast: Any) -> None:
    """HLS carries MPEG-TS and fMP4 timelines only: a WebM one (VP8 published over WHIP)
    answers 409 rather than a playlist no player could play."""
    if not containers.timeline(broadcast.kind).hls:
        raise ApiError(
            409,
            f"Broadcast {broadcast.id} is VP8 in WebM (published from a browser over WHIP), "
            "which HLS cannot carry: request a clip (a WebM file) instead, or publish H.264.",
        )


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
    presented = await _grant(request, accountId, streamName, expires, sig, lo, hi)
    try:
        start_ms, stop_ms = playback.parse_range(start, stop, duration, now_ms())
    except RangeRefused as exc:
        raise Invalid(exc.message, {exc.field: [exc.message]}) from exc
    if presented is not None and not presented.contains(start_ms, stop_ms):
        raise Forbidden("This playback link allows only the range it was made for.")
    service = _service(request)
    async with service.db.engine.connect() as conn:
        found = await store.overlapping(conn, accountId, streamName, start_ms, stop_ms)
        if broadcast is not None:
            found = {b: s for b, s in found.items() if b == broadcast}
        rows = await store.broadcasts_by_id(conn, list(found))
    grant = await _authorize(
        request,
        accountId,
        streamName,
        {int(r.token_id) for r in rows.values()},
        presented,
        token,
        stop_ms - start_ms,
    )
    if not found:
        raise NotFound(f"No timeline of {streamName!r} covers this range (anymore).")
    if len(found) > 1:
        ids = ", ".join(str(b) for b in found)
        raise Invalid(
            f"The range spans broadcasts {ids} (the stream restarted): add broadcast=<id>.",
            {"broadcast": [f"one of {ids}"]},
        )
    ((broadcast_id, overlapping),) = found.items()
    _playable(rows[broadcast_id])
    segments = playback.range_segments(overlapping, start_ms, stop_ms)
    query = grant.query(await playlinks.key(service))
    fmp4 = rows[broadcast_id].kind == "fmp4"
    return _playlist(playback.range_playlist(broadcast_id, fmp4, segments, query))


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
    grant = await _grant(request, accountId, streamName, expires, sig, lo, hi)
    if grant is None:
        raise Unauthorized("Segment URLs are signed: take them from a playlist of /play.")
    suffix = FilePath(fileName).suffix.lower()
    if suffix not in MEDIA_TYPES:
        raise NotFound("Segments end in .ts or .m4s; the init segment is init.mp4.")
    service = _service(request)
    async with service.db.engine.connect() as conn:
        if suffix == ".mp4":
            row = await store.broadcast_of(conn, accountId, streamName, broadcastId)
            path, live = (row.init_path, row.ended_at is None) if row else (None, False)
        else:
            row = await store.segment_file(conn, accountId, streamName, broadcastId, fileName)
            if row is not None and not _covered(grant, row.start_ms, row.duration_ms):
                raise Forbidden("This playback link does not cover this segment.")
            path, live = (row.path, row.ended_at is None) if row else (None, False)
    if not path:
        raise NotFound("This segment is gone: it left the timeline.")
    headers = {"Cache-Control": "private, max-age=3600"}
    if segments.here(path):
        response: Response = FileResponse(path, media_type=MEDIA_TYPES[suffix], headers=headers)
    else:
        # Another node ingested the stream: the segment comes from the bucket, through here.
        try:
            body = await segments.read(service.storage, path)
        except FileNotFoundError as exc:
            if live and service.storage.kind != "local":  # its node has not uploaded it yet
                raise Unavailable("This segment is not in the media store yet; retry.") from exc
            raise NotFound("This segment is gone: it left the timeline.") from exc
        except Exception as exc:  # the bucket cannot be reached: nothing the viewer did wrong
            raise Unavailable("The media store cannot be reached; try again shortly.") from exc
        headers["Content-Length"] = str(body.size)
        response = StreamingResponse(body.chunks, media_type=MEDIA_TYPES[suffix], headers=headers)
    if sid is not None and live:
        _viewers(request).seen((accountId, streamName), sid)
    return response


@play.options("/{rest:path}", summary="CORS preflight")
async def preflight(accountId: str, streamName: str, rest: str) -> Response:
    return Response(status_code=204)


# One router for `app.py`, its routes flat: the 405 answer walks routes, not nested routers.
router = APIRouter()
router.routes.extend([*viewing.router.routes, *play.routes])
