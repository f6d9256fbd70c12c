"""The web dashboard served at `/`: streams, assets, webhooks and their deliveries, with live
updates. Server-rendered pages and plain forms, so every action works without a script; a small
script adds live updates and the timeline picker."""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from mediahooks.dashboard import assets, live, signin, streams, web, webhooks

PAGES = ("/signin", "/signout", "/streams", "/assets", "/webhooks", "/live")


def mount(app: FastAPI) -> None:
    for module in (signin, streams, assets, webhooks, live):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_exception_handler(web.SignInRequired, web.on_sign_in_required)
    app.add_exception_handler(web.FormRefused, web.on_form_refused)
    api_handler = app.exception_handlers[RequestValidationError]

    async def on_invalid(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith(PAGES):
            answer = api_handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        assert isinstance(exc, RequestValidationError)
        fields = ", ".join(str(e.get("loc", ("?",))[-1]) for e in exc.errors() if e.get("loc"))
        seen = await web.visitor(request)
        message = f"This address has a value the dashboard does not understand ({fields})."
        return web.render(seen, "refused.html", 400, message=message)

    app.add_exception_handler(RequestValidationError, on_invalid)
