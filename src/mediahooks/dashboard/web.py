"""What every dashboard page shares: the visitor's session, rendering, forms with their CSRF
check, flash messages, and the answers for a visitor who is not signed in."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, unquote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from mediahooks import __version__
from mediahooks.dashboard import feed, session
from mediahooks.errors import MediahooksError
from mediahooks.service import Service
from mediahooks.store import keys

KEY_NAME = "dashboard"
FLASH_COOKIE = "mediahooks_flash"
MAX_FORM_BYTES = 64 * 1024
# No inline script or style anywhere: the pages run only what the package ships. hls.js feeds
# the video from a MediaSource (a blob: URL) and transmuxes in a worker it starts from a blob:.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        "worker-src 'self' blob:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    if isinstance(value, bytes | str):
        try:
            value = json.loads(value)
        except ValueError:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return json.dumps(value, indent=2, sort_keys=False)


templates.env.filters["when"] = when
templates.env.filters["pretty"] = pretty_json
templates.env.globals["version"] = __version__


def problem(exc: ValidationError | MediahooksError) -> str:
    """The one translation of an action's error (or of its body's validation) to the sentence
    a form shows: the error's own message, or each field's reason."""
    if isinstance(exc, MediahooksError):
        return exc.message
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error.get("loc", ())) or "form"
        parts.append(
            f"{field}: {str(error.get('msg', 'is invalid')).removeprefix('Value error, ')}"
        )
    return "; ".join(parts)


# The two below steer a request through the dashboard (to the sign-in page, to a refusal page);
# they are the door's own flow, not errors of the service, so they stay outside its tree.
class SignInRequired(Exception):
    """A page or action reached without a session: answered with a way to the sign-in page."""


class FormRefused(Exception):
    """A form post without this visitor's CSRF token (or too large to be ours)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Visitor:
    """Whoever made the request, signed in or not, with the key that signs their cookie."""

    request: Request
    session: session.Session
    key: bytes
    fresh: bool  # the cookie must be (re)sent with the response
    live_from: str = ""  # the feed's position before the page read its data

    @property
    def service(self) -> Service:
        service: Service = self.request.app.state.service
        return service

    @property
    def csrf(self) -> str:
        return session.csrf_token(self.session, self.key)

    @property
    def account(self) -> str:
        if self.session.account_id is None:
            raise SignInRequired
        return self.session.account_id

    def start(self, account_id: str | None) -> None:
        """A new session (new nonce): on sign-in and sign-out."""
        self.session = session.new(account_id, int(time.time()))
        self.fresh = True

    def finish(self, response: Response) -> Response:
        """Attach the session cookie (when it changed) and the security headers."""
        if self.fresh:
            response.set_cookie(
                session.COOKIE,
                session.encode(self.session, self.key),
                max_age=session.TTL_SECONDS,
                httponly=True,
                samesite="strict",
                secure=self.request.url.scheme == "https",
                path="/",
            )
        response.headers.update(SECURITY_HEADERS)
        return response


async def _key(request: Request) -> bytes:
    cached: bytes | None = getattr(request.app.state, "dashboard_key", None)
    if cached is None:
        service: Service = request.app.state.service
        async with service.db.transaction() as conn:
            cached = await keys.get_or_create(conn, KEY_NAME)
        request.app.state.dashboard_key = cached
    return cached


async def visitor(request: Request) -> Visitor:
    key = await _key(request)
    now = int(time.time())
    found = session.decode(request.cookies.get(session.COOKIE, ""), key, now)
    if found is None:
        return Visitor(request, session.new(None, now), key, fresh=True)
    return Visitor(request, found, key, fresh=False)


async def member(request: Request) -> Visitor:
    """The visitor, who must be signed in."""
    seen = await visitor(request)
    seen.account  # noqa: B018  (raises SignInRequired)
    if request.method == "GET":  # only pages listen; an action answers with a redirect
        async with seen.service.db.engine.connect() as conn:
            seen.live_from = str(await feed.latest(conn))
    return seen


VisitorDep = Annotated[Visitor, Depends(visitor)]
MemberDep = Annotated[Visitor, Depends(member)]


def render(seen: Visitor, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    flash = seen.request.cookies.get(FLASH_COOKIE)
    response = templates.TemplateResponse(
        seen.request,
        template,
        {
            "visitor": seen,
            "account": seen.session.account_id,
            "csrf": seen.csrf,
            "flash": _read_flash(flash),
            **context,
        },
        status_code=status_code,
    )
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    seen.finish(response)
    return response


def redirect(seen: Visitor, url: str, notice: str | None = None, error: bool = False) -> Response:
    """After a form: 303 to the page that shows the outcome, with a one-time message."""
    response = RedirectResponse(url, status_code=303)
    if notice:
        kind = "error" if error else "notice"
        response.set_cookie(
            FLASH_COOKIE,
            quote(json.dumps([kind, notice[:500]])),
            max_age=60,
            httponly=True,
            samesite="strict",
            path="/",
        )
    return seen.finish(response)


def _read_flash(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        kind, message = json.loads(unquote(raw))
    except (ValueError, TypeError):
        return None
    return {"kind": "error" if kind == "error" else "notice", "message": str(message)}


async def form(seen: Visitor) -> dict[str, list[str]]:
    """The posted form, once its CSRF token proved it came from one of this visitor's pages."""
    body = b""
    async for chunk in seen.request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused("This form is larger than any of the dashboard's.")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormRefused("This form could not be read.") from exc
    token = fields.get("csrf", [""])[0]
    if not session.csrf_ok(seen.session, seen.key, token):
        raise FormRefused(
            "This form was not sent from a page of this dashboard, or your session changed "
            "since the page was loaded. Go back, reload the page and try again."
        )
    return fields


def one(fields: dict[str, list[str]], name: str) -> str:
    return fields.get(name, [""])[0].strip()


async def on_sign_in_required(request: Request, _exc: Exception) -> Response:
    """A page leads to the sign-in page (and back after it); an action is refused."""
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
    return HTMLResponse(
        "<p>Sign in first: <a href='/signin'>/signin</a></p>",
        status_code=401,
        headers=SECURITY_HEADERS,
    )


async def on_form_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormRefused)
    seen = await visitor(request)
    return render(seen, "refused.html", status_code=403, message=exc.message)
