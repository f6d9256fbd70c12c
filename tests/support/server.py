"""The test server: its settings, `Api` (a running server with an authenticated client) and
the list of the API's routes."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from fastapi.routing import APIRoute

from mediahooks import server
from mediahooks.api import deliveries as deliveries_api
from mediahooks.api import webhooks as webhooks_api
from mediahooks.config import Settings
from mediahooks.service import Service

API_SECRET = "test-api-secret"
# Every server a test starts, in this process or as a command, takes any free RTMP and SRT
# port: many run at once.
os.environ.setdefault("MEDIAHOOKS_RTMP_PORT", "0")
os.environ.setdefault("MEDIAHOOKS_SRT_PORT", "0")
DATABASES = [
    name.strip()
    for name in os.environ.get("MEDIAHOOKS_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]


def settings_for(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: short retry schedule, private targets allowed, fast polling."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "api_secret": API_SECRET,
        "allow_private_targets": "true",
        "retry_schedule": "0.2,0.2,0.2",
        "retry_jitter": 0,
        "attempt_timeout": 2,
        "poll_interval": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """A running server and a client authenticated as the first account."""

    url: str
    service: Service
    session: aiohttp.ClientSession
    running: server.Running

    async def call(
        self, method: str, path: str, json: Any = None, *, auth: bool = True, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        headers = kwargs.pop("headers", {})
        if auth:
            headers.setdefault("Authorization", f"Bearer {API_SECRET}")
        async with self.session.request(
            method, self.url + path, json=json, headers=headers, **kwargs
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def ok(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, json, **kwargs)
        assert status == 200 and body["status"] == "success", (status, body)
        return body["data"]

    async def send_test(self, hook_type: str = "Media") -> dict[str, Any]:
        """Send a test event; the answer is `true`, as on the platform, and the event's message
        id and the webhooks it went to come in headers."""
        async with self.session.post(
            f"{self.url}/api/webhooks/test/{hook_type}",
            headers={"Authorization": f"Bearer {API_SECRET}"},
        ) as resp:
            body = await resp.json(content_type=None)
            assert resp.status == 200 and body == {"status": "success", "data": True}, body
            ids = resp.headers["X-Mediahooks-Webhook-Ids"]
            return {
                "messageId": resp.headers["X-Mediahooks-Message-Id"],
                "webhookIds": [int(i) for i in ids.split(",") if i],
            }

    async def webhook(self, url: str, **fields: Any) -> dict[str, Any]:
        body = {"url": url, "isFeedHooks": False, "isMediaHooks": True, **fields}
        data: dict[str, Any] = await self.ok("POST", "/api/webhooks", body)
        return data


ApiFactory = Callable[..., Awaitable[Api]]


def api_routes() -> list[tuple[str, str]]:
    """(method, path) of every /api route, with its path parameters filled in."""
    fill = {"{id}": "1", "{deliveryId}": "1", "{webhookType}": "Media"}
    routes: list[tuple[str, str]] = []
    for router in (webhooks_api.router, deliveries_api.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # `{id:int}` is `{id}`
            for name, value in fill.items():
                path = path.replace(name, value)
            assert "{" not in path, route.path
            assert route.methods is not None, route.path
            routes.extend((method, path) for method in sorted(route.methods))
    return routes
