"""Who may use the ingest door: every method needs a publish token that may publish the stream,
and a wrong token leaves a trace the operator can act on. A real server, both databases."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from mediahooks.store.schema import segments
from support.envelope import assert_fail
from support.media import push, token
from support.server import Api

WRONG = "f" * 64


async def ingest(
    api: Api, method: str, path: str, tok: str | None = None, data: bytes = b""
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, f"{api.url}/ingest/{path}", data=data, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None) if resp.status >= 400 else None


async def segment_count(api: Api) -> int:
    async with api.service.db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(segments))).scalar_one())


async def test_delete_needs_a_token_that_may_publish_the_stream(api: Api) -> None:
    good = await token(api, "cam")
    await push(api, good, "cam", 12)
    kept = await segment_count(api)
    refused = [
        ("cam/index0.ts", None, 401, "Missing publish token"),
        ("cam/index0.ts", WRONG, 401, "unknown publish token"),
        (f"t/{WRONG}/cam/index0.ts", None, 401, "unknown publish token"),
        ("studio/index0.ts", good["token"], 403, "may not publish the stream 'studio'"),
    ]
    for path, tok, status, words in refused:
        got, body = await ingest(api, "DELETE", path, tok)
        assert words in assert_fail(got, body, status), (path, body)
    # The publisher itself is told the segment is gone; the timeline keeps it for clips.
    assert (await ingest(api, "DELETE", "cam/index0.ts", good["token"]))[0] == 204
    assert (await ingest(api, "DELETE", f"t/{good['token']}/cam/index1.ts"))[0] == 204
    assert await segment_count(api) == kept > 0


@pytest.mark.parametrize(
    ("method", "path", "header"),
    [
        ("PUT", "cam/index0.ts", True),
        ("PUT", f"t/{WRONG}/cam/index0.ts", False),
        ("POST", "cam/index.m3u8", True),
        ("DELETE", "cam/index0.ts", True),
    ],
)
async def test_a_wrong_token_is_logged_with_the_stream_and_the_address(
    api: Api, caplog: pytest.LogCaptureFixture, method: str, path: str, header: bool
) -> None:
    caplog.set_level(logging.WARNING, "mediahooks.ingest")
    status, body = await ingest(api, method, path, WRONG if header else None, b"\x47" * 188)
    assert_fail(status, body, 401)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "mediahooks.ingest"]
    assert "'cam'" in line and "127.0.0.1" in line and "unknown publish token" in line
    assert WRONG not in line  # a near miss of a real token is not written out whole


async def test_a_right_token_is_not_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    good = await token(api, "cam")
    caplog.set_level(logging.WARNING, "mediahooks.ingest")
    await push(api, good, "cam", 12)
    assert [r for r in caplog.records if r.name == "mediahooks.ingest"] == []
