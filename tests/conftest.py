"""Shared fixtures: a real database (SQLite and PostgreSQL), a real server on an ephemeral port,
and a real HTTP receiver whose answers each test scripts.

Every test that takes `api` runs once per database. PostgreSQL is required: when it cannot be
reached the test fails with the reason, it is never skipped.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

import buckets
from databases import POSTGRES_URL, fresh_database
from mediahooks import server
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


@pytest.fixture(params=DATABASES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A new, empty database of each kind."""
    async with (
        fresh_postgres_database()
        if request.param == "postgresql"
        else fresh_database("sqlite", tmp_path) as url
    ):
        yield url


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A throwaway PostgreSQL database; PostgreSQL missing fails the test, never skips it."""
    try:
        async with fresh_database("postgresql", Path()) as url:
            yield url
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is required at {POSTGRES_URL} (MEDIAHOOKS_TEST_POSTGRES_URL): {exc}"
        )


def test_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[buckets.Endpoint | None]:
    """moto's S3 server on loopback for the whole run (None when MEDIAHOOKS_TEST_S3_URL names a
    bucket); the AWS variables point at it, for the services and commands the tests start."""
    if buckets.GIVEN_URL:
        yield None
        return
    with buckets.moto_endpoint() as endpoint:
        saved = {name: os.environ.get(name) for name in endpoint.env()}
        os.environ.update(endpoint.env())
        yield endpoint
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def storage() -> str:
    """Where media is kept: the data directory, unless a test module asks for both storages
    by overriding this fixture (see `both_storages`)."""
    return "local"


@pytest.fixture
def storage_url(storage: str, request: pytest.FixtureRequest) -> str:
    """`MEDIAHOOKS_STORAGE_URL` for the test's storage: empty, or a fresh bucket."""
    if storage == "local":
        return ""
    endpoint = request.getfixturevalue("s3_endpoint")
    return buckets.new_bucket(endpoint) if endpoint else buckets.fresh_prefix()


@pytest.fixture
async def api_factory(
    database_url: str, tmp_path: Path, storage_url: str
) -> AsyncIterator[ApiFactory]:
    """Start servers with settings of the test's choosing; all are stopped at the end."""
    started: list[Api] = []

    async def start(*, dispatch: bool = True, **overrides: Any) -> Api:
        overrides.setdefault("storage_url", storage_url)
        service = Service(test_settings(database_url, tmp_path / "data", **overrides))
        await service.open(dispatch=dispatch)
        running = await server.start(service, "127.0.0.1", 0)
        api = Api(running.url, service, aiohttp.ClientSession(), running)
        started.append(api)
        return api

    yield start
    for api in started:
        await api.session.close()
        await api.running.stop()
        await api.service.close()


@pytest.fixture
async def api(api_factory: ApiFactory) -> Api:
    return await api_factory()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        import json

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


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    """Poll ``check`` until it holds; fail with a clear message after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)
