"""`/ingest/...`: where publishers PUT their HLS playlist and segments.

`Authorization: Bearer <publish token>`, or the token in the path (`/ingest/t/<token>/...`) for
tools that cannot set headers: relative segment URLs inherit the path, not the query string.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mediahooks.api.envelope import ApiError
from mediahooks.errors import Unauthorized
from mediahooks.media.ingest import Ingest, IngestError

router = APIRouter(prefix="/ingest", tags=["ingest"])


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


def _origin(request: Request) -> str | None:
    """The page a browser publishes from (a token's allowedOrigins); other publishers send
    none."""
    return request.headers.get("origin")


async def _receive(request: Request, token: str, stream: str, filename: str) -> Response:
    ingest: Ingest = request.app.state.ingest
    try:
        await ingest.receive(
            token, stream, filename, request.stream(), _remote(request), _origin(request)
        )
    except IngestError as exc:
        raise ApiError(exc.status, exc.message) from exc
    return Response(status_code=201)


async def _forget(request: Request, token: str, stream: str) -> Response:
    # Publishers delete segments that left their sliding playlist; our timeline keeps them. Only
    # a publisher of the stream gets that answer: to anyone else this is a door like the others.
    ingest: Ingest = request.app.state.ingest
    try:
        await ingest.authorize(token, stream, _remote(request), _origin(request))
    except IngestError as exc:
        raise ApiError(exc.status, exc.message) from exc
    return Response(status_code=204)


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "Missing publish token: send 'Authorization: Bearer <token>' or put it in the path, "
            "/ingest/t/<token>/<stream>/<file>.",
        )
    return token.strip()


@router.put("/t/{token}/{stream}/{filename}")
@router.post("/t/{token}/{stream}/{filename}")
async def upload_with_path_token(
    request: Request, token: str, stream: str, filename: str
) -> Response:
    """Upload a playlist or segment, the token in the path."""
    return await _receive(request, token, stream, filename)


@router.put("/{stream}/{filename}")
@router.post("/{stream}/{filename}")
async def upload(request: Request, stream: str, filename: str) -> Response:
    """Upload a playlist or segment with `Authorization: Bearer <publish token>`."""
    return await _receive(request, _bearer(request), stream, filename)


@router.delete("/t/{token}/{stream}/{filename}", status_code=204)
async def forget_with_path_token(
    request: Request, token: str, stream: str, filename: str
) -> Response:
    """A publisher's delete of a segment that left its playlist: acknowledged, kept."""
    return await _forget(request, token, stream)


@router.delete("/{stream}/{filename}", status_code=204)
async def forget(request: Request, stream: str, filename: str) -> Response:
    """A publisher's delete of a segment that left its playlist: acknowledged, kept."""
    return await _forget(request, _bearer(request), stream)
