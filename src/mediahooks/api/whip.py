"""`/api/whip/...`: WebRTC publishing as the WHIP RFC (9725) and the platform have it.

`POST /api/whip/<stream>` with the publisher's SDP offer (`Content-Type: application/sdp`) and
the publish token (`Authorization: Bearer <token>` or `?auth=<token>`) answers `201` with the
SDP answer, the session's `Location` and `ETag`, and `Link` headers for the configured STUN/TURN
servers. `DELETE` on the session ends the broadcast, on whichever API process it lands. Trickle
ICE and ICE restarts are not supported: `PATCH` answers 405, as the RFC asks of such a server
(all candidates are in the offer and the answer). Browsers publish from other origins: every
answer carries CORS headers; a token whose `allowedOrigins` is not empty refuses publishing
from any other origin (`admission`, as every door)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from mediahooks.api.envelope import ApiError, fail, status_of
from mediahooks.config import IceServer
from mediahooks.errors import (
    Conflict,
    Forbidden,
    Invalid,
    MediahooksError,
    NotFound,
    Unauthorized,
    Unavailable,
)
from mediahooks.ingest.live import Refused, authorize
from mediahooks.ingest.whip import WhipIngest, WhipSession
from mediahooks.media.ingest import STREAM_NAME

router = APIRouter(prefix="/api/whip", tags=["whip"])

_METHODS = "POST, DELETE, PATCH, OPTIONS"
_EXPOSED = "Location, ETag, Link, Accept-Patch, Accept-Post"
_KIND: dict[str, type[MediahooksError]] = {
    "token": Unauthorized,
    "stream": Forbidden,
    "access": Forbidden,
    "live": Conflict,
    "busy": Unavailable,
    "codec": Invalid,
    "spool": Unavailable,
}


def _whip(request: Request) -> WhipIngest:
    whip: WhipIngest = request.app.state.service.whip
    return whip


def _cors(request: Request, response: Response) -> Response:
    """Let a page of any origin read the answer: who may publish is the token's business,
    checked on POST (a preflight carries no token to check)."""
    origin = request.headers.get("origin")
    headers = response.headers
    headers["Access-Control-Allow-Origin"] = origin or "*"
    if origin:
        headers["Vary"] = "Origin"
    headers["Access-Control-Allow-Methods"] = _METHODS
    headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, If-Match"
    headers["Access-Control-Expose-Headers"] = _EXPOSED
    headers["Access-Control-Max-Age"] = "86400"
    return response


def _links(servers: list[IceServer]) -> list[str]:
    """RFC 9725 section 4.6: one `Link: <url>; rel="ice-server"` per STUN/TURN url."""
    links = []
    for server in servers:
        urls = [server.urls] if isinstance(server.urls, str) else server.urls
        for url in urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username is not None:
                link += f'; username="{_quoted(server.username)}"'
            if server.credential is not None:
                link += f'; credential="{_quoted(server.credential)}"; credential-type="password"'
            links.append(link)
    return links


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _with_links(request: Request, response: Response) -> Response:
    for link in _links(request.app.state.service.settings.webrtc_ice_servers):
        response.headers.append("Link", link)
    return response


def _token(request: Request) -> str:
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        return bearer.strip()
    query = request.query_params.get("auth", "").strip()
    if query:
        return query
    raise Unauthorized(
        "Missing publish token: send 'Authorization: Bearer <token>' or add ?auth=<token> to "
        "the WHIP url."
    )


async def _offer(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/sdp":
        raise ApiError(
            415, "Send the SDP offer with 'Content-Type: application/sdp'.", {"body": ["type"]}
        )
    try:
        offer = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("The SDP offer is not UTF-8 text.", {"body": ["encoding"]}) from None
    if not offer.strip():
        raise Invalid("The SDP offer is empty.", {"body": ["required"]})
    return offer


def _session(request: Request, stream: str, resource: str) -> WhipSession:
    session = _whip(request).get(resource)
    if session is None or session.stream != stream:
        raise NotFound("No such WHIP session: it has ended, or the url is mistyped.")
    return session


@router.options("/{stream}", include_in_schema=False)
@router.options("/{stream}/{resource}", include_in_schema=False)
async def preflight(request: Request) -> Response:
    response = Response(status_code=204, headers={"Accept-Post": "application/sdp"})
    return _cors(request, _with_links(request, response))


def _refusal(request: Request, exc: MediahooksError) -> Response:
    """The envelope, with CORS headers so that a page of another origin can show why."""
    status = status_of(exc)
    assert status is not None  # every refusal of this door is of a kind
    return _cors(request, fail(status, exc.message, exc.errors))


_ANSWER: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "The SDP answer; `Location` is the session, `ETag` its tag.",
        "content": {"application/sdp": {"schema": {"type": "string"}}},
    }
}


@router.post("/{stream}", status_code=201, responses=_ANSWER)
async def publish(request: Request, stream: str) -> Response:
    """Publish ``stream`` over WebRTC: the body is the SDP offer (`Content-Type:
    application/sdp`; the publish token as `Authorization: Bearer` or `?auth=`); the answer's
    body is the SDP answer, `Location` the session to DELETE when done."""
    try:
        return await _publish(request, stream)
    except MediahooksError as exc:
        return _refusal(request, exc)


async def _publish(request: Request, stream: str) -> Response:
    if not STREAM_NAME.fullmatch(stream):
        raise Invalid("Stream names are 1-128 letters, digits, '.', '_' or '-'.")
    whip = _whip(request)
    try:
        # Who asks first: a stranger learns nothing about what the offer should have been.
        remote = request.client.host if request.client else None
        origin = request.headers.get("origin")  # the page a browser publishes from
        publisher = await authorize(whip.live.db, _token(request), stream, remote, origin)
        offer = await _offer(request)
        session = await whip.publish(publisher, stream, offer, remote or "?")
    except Refused as exc:
        raise _KIND[exc.kind](exc.reason[:1].upper() + exc.reason[1:] + ".") from exc
    except ValueError as exc:
        raise Invalid(str(exc)[:1].upper() + str(exc)[1:] + ".", {"body": ["sdp"]}) from exc
    location = f"/api/whip/{stream}/{session.id}"
    response = Response(
        session.answer_sdp,
        status_code=201,
        media_type="application/sdp",
        headers={"Location": location, "ETag": session.etag},
    )
    return _cors(request, _with_links(request, response))


@router.delete("/{stream}/{resource}", status_code=200, response_class=Response)
async def stop(request: Request, stream: str, resource: str) -> Response:
    """End the WHIP session and its broadcast, whichever API process receives it."""
    try:
        session = _session(request, stream, resource)
    except NotFound as exc:
        if not await _whip(request).stop_elsewhere(stream, resource):
            return _refusal(request, exc)
    else:
        await session.end("the publisher deleted the session")
    return _cors(request, Response(status_code=200))


@router.patch("/{stream}/{resource}", status_code=405, response_class=Response)
async def trickle(request: Request, stream: str, resource: str) -> Response:
    """Trickle ICE and ICE restarts are not supported (RFC 9725 section 4.3.1): 405."""
    try:
        _session(request, stream, resource)
    except NotFound as exc:
        return _refusal(request, exc)
    response = fail(
        405,
        "Trickle ICE and ICE restarts are not supported: send every candidate in the offer "
        "(wait for ICE gathering to complete).",
    )
    response.headers["Allow"] = "DELETE, OPTIONS"
    return _cors(request, response)
