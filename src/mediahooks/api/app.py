"""The ASGI app: routers, the envelope on every answer, and the request guards in front."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from mediahooks import __version__, metrics
from mediahooks.api import (
    assets,
    deliveries,
    envelope,
    health,
    ingest,
    openapi,
    playback,
    storage_profiles,
    thumbnails,
    tokens,
    webhooks,
    whip,
)
from mediahooks.clock import now_ms
from mediahooks.errors import MediahooksError
from mediahooks.media.ingest import Ingest
from mediahooks.service import Service
from mediahooks.store import claims


def create_app(service: Service, extra: Sequence[Callable[[FastAPI], None]] = ()) -> FastAPI:
    """The API; ``extra`` mounts more on the same app (the dashboard, the demo's receiver)."""
    app = FastAPI(
        title="mediahooks",
        version=__version__,
        description="Platform-compatible media webhooks with ordered, signed, retried delivery.",
        docs_url=None,  # served by `openapi.mount`, from the package: /docs works offline
        redoc_url=None,
    )
    app.state.service = service
    app.state.ingest = Ingest(service.db, service.settings, service.uploads)
    routers = (
        health.router,
        webhooks.router,
        deliveries.router,
        tokens.router,
        assets.router,
        assets.downloads,
        storage_profiles.router,
        thumbnails.router,
        ingest.router,
        playback.router,
        whip.router,
    )
    for router in routers:
        app.include_router(router)
    app.state.routes = [route for router in routers for route in router.routes]
    app.add_exception_handler(MediahooksError, envelope.on_error)
    app.add_exception_handler(RequestValidationError, envelope.on_validation_error)
    app.add_exception_handler(StarletteHTTPException, envelope.on_http_error)
    app.add_exception_handler(Exception, envelope.on_crash)
    app.add_middleware(envelope.Outages)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> PlainTextResponse:
        now = now_ms()
        async with service.db.engine.connect() as conn:
            pending, oldest_due = await claims.backlog(conn, now)
        metrics.PENDING.set(pending)
        metrics.OLDEST_DUE_AGE.set(0 if oldest_due is None else (now - oldest_due) / 1000)
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    openapi.mount(app)
    for mount in extra:
        mount(app)
    return NoNul(BodyLimit(TrailingSlash(app), service.settings.max_body_bytes))  # type: ignore[return-value]


class TrailingSlash:
    """`/api/webhooks/` and `/api/webhooks` are the same route: the platform's clients send both."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope = dict(scope, path=scope["path"].rstrip("/") or "/")
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class NoNul:
    """Refuse a NUL character in the path or the query: PostgreSQL can neither store nor compare
    one, and SQLite must answer the same (bodies are checked by `bodies.Body`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
                response = envelope.fail(
                    400, "The url holds a NUL character (%00): remove it.", {"url": ["NUL"]}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse API bodies over the limit before anything parses them, chunked ones included."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        body, more, messages = 0, True, []
        while more:
            message = await receive()
            messages.append(message)
            body += len(message.get("body", b""))
            more = message.get("more_body", False)
            if body > self.limit:
                await self._too_large(scope, receive, send)
                return

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = envelope.fail(
            413, f"The request body is larger than {self.limit} bytes.", {"body": ["too large"]}
        )
        await response(scope, receive, send)
