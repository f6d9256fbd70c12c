"""Behind a load balancer a WHIP publisher's DELETE may reach another API process than the one
receiving its media: two `serve` processes over one PostgreSQL; the publisher posts its offer
to A and deletes the session through B, and the broadcast ends (A reads B's mark within its
token check); afterwards the session is gone everywhere (404 on both)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest

from support.crashkit import API_SECRET, MediahooksProcess, server_env
from support.databases import fresh_postgres_database
from support.waiting import eventually
from support.whipkit import WhipClient

pytestmark = pytest.mark.slow


async def test_a_delete_on_another_process_ends_the_broadcast(tmp_path: Path) -> None:
    async with fresh_postgres_database() as db_url, AsyncExitStack() as stack:
        nodes = []
        for name in ("a", "b"):
            env = server_env(
                db_url,
                tmp_path / name,
                attempt_timeout=2,
                retry_schedule="0.2",
                poll_interval=0.2,
                webrtc_addresses="127.0.0.1",
                keyframe_interval="1",
            )
            process = MediahooksProcess(
                ["serve", "--no-dispatcher", "--port", "0"], env, tmp_path / f"{name}.log"
            )
            await stack.enter_async_context(process)
            await process.start()
            nodes.append(process.url)
        a, b = nodes
        session = await stack.enter_async_context(aiohttp.ClientSession())
        headers = {"Authorization": f"Bearer {API_SECRET}"}
        body: dict[str, Any] = {"label": "cam", "streams": [{"streamName": "cam"}]}
        async with session.post(f"{b}/api/publish_token", json=body, headers=headers) as r:
            assert r.status == 200
            tok = (await r.json())["data"]["token"]
        database = await asyncpg.connect(db_url)
        stack.push_async_callback(database.close)

        async def segments() -> int:
            return int(await database.fetchval("SELECT count(*) FROM segments"))

        client = WhipClient(f"{a}/api/whip/cam")
        stack.push_async_callback(client.pc.close)
        status, answer = await client.publish(tok)
        assert status == 201, answer
        await client.connected()

        async def flowing() -> bool:
            return await segments() >= 2

        await eventually(flowing, timeout=40)
        assert client.location is not None
        assert await client.delete(b) == 200  # not where the media goes

        async def ended() -> bool:
            return bool(await database.fetchval("SELECT ended_at FROM broadcasts"))

        await eventually(ended, timeout=15)
        for node in (a, b):
            async with session.delete(node + client.location) as r:
                assert r.status == 404, node
                assert "No such WHIP session" in (await r.json())["data"]["message"]
        # The stream can go live again at once: A let go of it.
        again = WhipClient(f"{b}/api/whip/cam")
        stack.push_async_callback(again.pc.close)
        assert (await again.publish(tok))[0] == 201
        await again.delete(b)
