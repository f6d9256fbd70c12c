"""A real HTTP endpoint for hooks: it records every request, and each path answers 200 unless
a test scripts it otherwise."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Receiver:
    """A real HTTP endpoint. Each path answers 200 unless a test scripts it otherwise."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def on(self, path: str, handler: Handler) -> str:
        self.handlers[path] = handler
        return self.url + path

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(
        self, count: int, path: str | None = None, timeout: float = 15
    ) -> list[Received]:
        """Wait until ``count`` requests reached ``path`` (any path when None)."""

        def got() -> list[Received]:
            return self.received if path is None else self.at(path)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(got()) >= count), timeout)
        return got()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body, time.monotonic()))
        async with self._arrived:
            self._arrived.notify_all()
        handler = self.handlers.get(request.path)
        if handler is None:
            return web.Response(text="ok")
        return await handler(request)
