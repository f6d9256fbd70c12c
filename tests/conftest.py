"""Fixtures: a real database (SQLite and PostgreSQL), a real server on an ephemeral port, and a
real HTTP receiver whose answers each test scripts. What they hand out is in `support`.

Every test that takes `api` runs once per database. PostgreSQL is required: when it cannot be
reached the test fails with the reason, it is never skipped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mediahooks import server
from mediahooks.service import Service
from support import buckets
from support.databases import fresh_database, fresh_postgres_database
from support.receiver import Receiver
from support.server import DATABASES, Api, ApiFactory, settings_for


@pytest.fixture(params=DATABASES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A new, empty database of each kind."""
    async with (
        fresh_postgres_database()
        if request.param == "postgresql"
        else fresh_database("sqlite", tmp_path) as url
    ):
        yield url


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
    by parametrizing it (`storage` in `local`, `s3`)."""
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
        service = Service(settings_for(database_url, tmp_path / "data", **overrides))
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
