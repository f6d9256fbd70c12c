"""A ready ASGI app that receives hooks: run it alone (``uvicorn module:app``) or mount it in
any ASGI framework (Starlette, FastAPI, Django's ASGI handler, ...). Standard library only.

    app = WebhookApp(os.environ["WEBHOOK_SECRET"], on_hook)

``on_hook(delivery)`` may be a plain or an ``async`` function. A plain one runs in a thread, so
it cannot stall the event loop. The app answers 204 when the handler returned, 500 when it
raised (so the sender tries again later), 401 for a forged, tampered or replayed request, 400
for a body that is not a hook, 405 for anything but POST and 413 for an oversized body.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mediahooks.receiver.handler import Delivery, Receiver, Rejected
from mediahooks.receiver.verify import DEFAULT_TOLERANCE, Secrets

__all__ = ["WebhookApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Delivery], Awaitable[object] | object]

log = logging.getLogger("mediahooks.receiver")

# JSON hooks are small (the server caps them at 64 KiB); a thumbnail is a JPEG at the stream's
# own resolution, which at 4K can pass a megabyte. Anything far larger is not a hook.
MAX_BODY = 8 * 1024 * 1024


class _TooLarge(Exception):
    pass


class WebhookApp:
    def __init__(
        self,
        secrets: Secrets,
        on_hook: Handler,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        platform: bool = False,
        max_body: int = MAX_BODY,
    ) -> None:
        self.receiver = Receiver(secrets, tolerance=tolerance, platform=platform)
        self.on_hook = on_hook
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            # A websocket or an unknown protocol: nothing for a webhook endpoint to say.
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b"hooks are POSTed", [(b"allow", b"POST")])
            return
        try:
            body = await self._body(receive)
        except _TooLarge:
            await _respond(send, 413, b"too large for a hook")
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            delivery = self.receiver.receive(body, headers)
        except Rejected as exc:
            log.warning("refused a hook: %s", exc.reason)
            await _respond(send, exc.status, exc.reason.encode())
            return
        try:
            await self._handle(delivery)
        except Exception:
            log.exception("the hook handler failed on %s", delivery.key)
            await _respond(send, 500, b"the handler failed; send it again later")
            return
        await _respond(send, 204, b"")

    async def _handle(self, delivery: Delivery) -> None:
        if inspect.iscoroutinefunction(self.on_hook):
            await self.on_hook(delivery)
            return
        result = await asyncio.to_thread(self.on_hook, delivery)
        if inspect.isawaitable(result):
            await result

    async def _body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])]
    head.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
