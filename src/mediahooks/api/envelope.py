"""The response envelope of the platform: ``success``/``fail``/``error``, and the errors that
produce the latter two. Every answer of the API goes through here."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediahooks.errors import (
    Conflict,
    Forbidden,
    Invalid,
    MediahooksError,
    NotFound,
    Refused,
    Unauthorized,
    Unavailable,
)
from mediahooks.store.outage import is_outage

T = TypeVar("T")
log = logging.getLogger("mediahooks.api")

# What each kind of `mediahooks.errors` answers. The platform answers 400 both to a request it
# cannot read and to one the state of things refuses, so `Invalid` and `Refused` share it.
STATUS_OF_KIND: dict[type[MediahooksError], int] = {
    Invalid: 400,
    Refused: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Unavailable: 503,
}


class ApiError(MediahooksError):
    """An answer of HTTP's own, with a status no kind of the tree means (415 for a body's media
    type, 416 for a Range, a refusal whose status the platform fixes per case)."""

    def __init__(
        self, status: int, message: str, errors: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message, errors)
        self.status = status


def status_of(exc: MediahooksError) -> int | None:
    """The status an error of the tree answers; None for one of no kind (a bug at the door)."""
    if isinstance(exc, ApiError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS_OF_KIND:
            return STATUS_OF_KIND[cls]
    return None


def found(row: T | None, what: str) -> T:
    """The row, or a 404 naming what was not found."""
    if row is None:
        raise NotFound(f"{what} not found.")
    return row


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"status": "success", "data": data}, status_code=status)


def fail(status: int, message: str, errors: dict[str, list[str]] | None = None) -> JSONResponse:
    return JSONResponse(
        {"status": "fail", "data": {"message": message, "errors": errors or {}}},
        status_code=status,
    )


def field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def on_error(request: Request, exc: Exception) -> JSONResponse:
    """The one translation of the error tree to the envelope: ``fail`` with the kind's status."""
    assert isinstance(exc, MediahooksError)
    status = status_of(exc)
    if status is None:
        log.error("an error of no kind reached the API", exc_info=exc)
        return await on_crash(request, exc)
    return fail(status, exc.message, exc.errors)


async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            detail = error.get("ctx", {}).get("error", "")
            return fail(400, f"The request body is not valid JSON ({detail}).", {"body": [detail]})
        field = field_of(tuple(error.get("loc", ())))
        if field == "body" and error.get("type") in ("model_attributes_type", "dict_type"):
            return fail(
                400,
                "The request body must be a JSON object; send it with "
                "'Content-Type: application/json'.",
                {"body": ["must be a JSON object"]},
            )
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            message = "is required"
        errors.setdefault(field, []).append(message)
    summary = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in errors.items())
    return fail(400, f"Invalid request: {summary}", errors)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's own, when it cannot decode the body at all (not UTF-8, nested too deeply).
        return fail(
            400,
            "The request body could not be read: send a JSON object encoded as UTF-8.",
            {"body": [str(exc.detail)]},
        )
    messages = {404: "No such resource.", 405: "This method is not allowed on this path."}
    response = fail(exc.status_code, messages.get(exc.status_code, str(exc.detail)))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        # RFC 9110: `Allow` lists every method of the resource. Starlette names only those of
        # the first route of the path, and FastAPI makes one route per method.
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


def allowed_methods(request: Request) -> list[str]:
    """The methods of every API route whose path matches the request's (`app.state.routes`:
    FastAPI keeps included routers nested, out of reach of a plain walk)."""
    methods: set[str] = set()
    for route in request.app.state.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE and route.methods:
            methods |= route.methods
    return sorted(methods)


# How soon a client should try again while the database is away: the loops reconnect within
# seconds of its return.
RETRY_AFTER_SECONDS = 5


def unavailable() -> JSONResponse:
    response = fail(
        503,
        "The database is unreachable for the moment; nothing was changed. "
        f"Try again in {RETRY_AFTER_SECONDS} seconds.",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class Outages:
    """Answer 503 when the database is away, as an answer like any other: the connection stays
    open (an error left to the server's last resort would close it) and nothing is logged per
    request (the background loops log the outage once)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if scope["type"] != "http" or started or not is_outage(exc):
                raise
            await unavailable()(scope, receive, send)


async def on_crash(_request: Request, _exc: Exception) -> JSONResponse:
    # A bug: the connection may hold a half-read request body, so it is not reused.
    return JSONResponse(
        {"status": "error", "message": "Internal server error", "code": 500},
        status_code=500,
        headers={"Connection": "close"},
    )
