"""Who a publish token admits, at every door: an inactive or expired token, an address outside
`allowedIpAddresses` (IPv4, IPv6, CIDR ranges) and an origin outside `allowedOrigins` are refused
on a real HLS PUT and a real RTMP publish (the ffmpeg command line), with the reason; disabling
the token of a live RTMP publisher stops it. Both databases. The rules themselves:
`unit/test_admission.py`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mediahooks import server
from mediahooks.service import Service
from support.envelope import assert_fail
from support.live import Publisher, broadcasts_of, ffmpeg, segments_of
from support.server import Api, settings_for
from support.tokens import create, ts_segment
from support.waiting import eventually

# --- HLS: a real PUT --------------------------------------------------------------------------


async def put(
    url: str, token: str, stream: str = "cam", origin: str | None = None, method: str = "PUT"
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    if origin is not None:
        headers["Origin"] = origin
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method, f"{url}/ingest/{stream}/index0.ts", data=ts_segment(), headers=headers
        ) as resp,
    ):
        return resp.status, await resp.json(content_type=None) if resp.status >= 400 else None


async def test_hls_refuses_inactive_and_expired_tokens(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "mediahooks.ingest")
    inactive = await create(api)
    await api.ok("PUT", f"/api/publish_token/{inactive['id']}", {"isActive": False})
    status, body = await put(api.url, inactive["token"])
    assert "disabled" in assert_fail(status, body, 401)
    # The operator can tell which publisher, where, and why.
    (line,) = [r.getMessage() for r in caplog.records if r.name == "mediahooks.ingest"]
    assert line == (
        f"refused a publisher at 127.0.0.1 for stream 'cam' with publish token {inactive['id']}: "
        "this publish token is disabled (isActive is false)"
    )
    status, body = await put(api.url, inactive["token"], method="DELETE")
    assert "disabled" in assert_fail(status, body, 401)

    expiring = await create(api, expires=1)
    assert (await put(api.url, expiring["token"]))[0] == 201

    async def expired() -> bool:
        return (await put(api.url, expiring["token"]))[0] == 401

    await eventually(expired, timeout=10)
    status, body = await put(api.url, expiring["token"])
    assert f"expired at {expiring['expiresOn']}" in assert_fail(status, body, 401)
    assert await broadcasts_of(api, "cam") != []  # what it sent while valid is kept


async def test_hls_checks_the_address_against_allowed_ip_addresses(api: Api) -> None:
    elsewhere = await create(api, allowedIpAddresses=["203.0.113.0/24", "2001:db8::/32"])
    status, body = await put(api.url, elsewhere["token"])
    message = assert_fail(status, body, 403)
    assert "may not publish from 127.0.0.1" in message and "allowedIpAddresses" in message
    here = await create(api, allowedIpAddresses=["203.0.113.0/24", "127.0.0.0/8"])
    assert (await put(api.url, here["token"]))[0] == 201
    exact = await create(api, allowedIpAddresses=["127.0.0.1"], streams=[{"streamName": "two"}])
    assert (await put(api.url, exact["token"], "two"))[0] == 201
    # A change of the list is obeyed at the next request.
    await api.ok("PUT", f"/api/publish_token/{here['id']}", {"updateAllowedIpAddresses": ["::1"]})
    assert_fail(*await put(api.url, here["token"]), 403)


async def test_hls_checks_a_browser_origin_against_allowed_origins(api: Api) -> None:
    tok = await create(api, allowedOrigins=["https://studio.example.com", "*.example.org"])
    status, body = await put(api.url, tok["token"], origin="https://evil.example.net")
    message = assert_fail(status, body, 403)
    assert "'https://evil.example.net'" in message and "allowedOrigins" in message
    assert_fail(*await put(api.url, tok["token"], origin="http://studio.example.com"), 403)
    assert (await put(api.url, tok["token"], origin="https://studio.example.com"))[0] == 201
    assert (await put(api.url, tok["token"], origin="https://cams.example.org"))[0] == 201
    assert (await put(api.url, tok["token"]))[0] == 201  # ffmpeg sends no Origin


@pytest.fixture
async def ipv6_api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """A server whose HTTP and RTMP doors listen on ::1 only."""
    service = Service(settings_for(database_url, tmp_path / "data"))
    await service.open()
    running = await server.start(service, "::1", 0)
    port = running.server.servers[0].sockets[0].getsockname()[1]
    api = Api(f"http://[::1]:{port}", service, aiohttp.ClientSession(), running)
    yield api
    await api.session.close()
    await running.stop()
    await service.close()


async def test_hls_over_ipv6(ipv6_api: Api) -> None:
    api = ipv6_api
    loopback = await create(api, allowedIpAddresses=["::1/128"])
    assert (await put(api.url, loopback["token"]))[0] == 201
    other = await create(api, allowedIpAddresses=["fd00::/8", "127.0.0.1"])
    message = assert_fail(*await put(api.url, other["token"]), 403)
    assert "may not publish from ::1" in message


# --- RTMP: a real ffmpeg publish --------------------------------------------------------------


def rtmp(api: Api, host: str, stream: str, token: str) -> str:
    assert api.service.rtmp is not None
    return f"rtmp://{host}:{api.service.rtmp.port}/v2/pub/{stream}?token={token}"


@pytest.mark.slow
async def test_rtmp_refuses_inactive_expired_and_disallowed_addresses(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mediahooks.rtmp")
    inactive = await create(api, streams=[{"streamName": "a"}])
    await api.ok("PATCH", "/api/publish_token/disable", {"tokenIds": [inactive["id"]]})
    expired = await create(api, expires=1, streams=[{"streamName": "b"}])
    elsewhere = await create(
        api, allowedIpAddresses=["203.0.113.0/24"], streams=[{"streamName": "c"}]
    )
    here = await create(
        api, allowedIpAddresses=["10.0.0.0/8", "127.0.0.0/8"], streams=[{"streamName": "d"}]
    )
    await asyncio.sleep(1.1)  # past `expired`'s one second
    cases = {
        "a": (inactive, "this publish token is disabled"),
        "b": (expired, "this publish token expired at"),
        "c": (elsewhere, "may not publish from 127.0.0.1"),
        "d": (here, None),
    }
    publishers = {
        stream: await Publisher.start(ffmpeg(rtmp(api, "127.0.0.1", stream, tok["token"]), 2))
        for stream, (tok, _) in cases.items()
    }
    for stream, (_, reason) in cases.items():
        code, err = await publishers[stream].finish(timeout=30)
        if reason is None:
            assert code == 0, err
            assert len(await broadcasts_of(api, stream)) == 1
        else:
            assert code != 0 and reason in err, (stream, err)  # ffmpeg shows the reason
            assert await broadcasts_of(api, stream) == []
            # And the log says who, where and why.
            lines = [
                r.getMessage()
                for r in caplog.records
                if f"refused for '{stream}'" in r.getMessage()
            ]
            assert len(lines) == 1 and "127.0.0.1:" in lines[0] and reason in lines[0], lines


@pytest.mark.slow
async def test_rtmp_over_ipv6(ipv6_api: Api) -> None:
    api = ipv6_api
    loopback = await create(api, allowedIpAddresses=["::1"], streams=[{"streamName": "a"}])
    other = await create(api, allowedIpAddresses=["fd00::/8"], streams=[{"streamName": "b"}])
    good = await Publisher.start(ffmpeg(rtmp(api, "[::1]", "a", loopback["token"]), 2))
    bad = await Publisher.start(ffmpeg(rtmp(api, "[::1]", "b", other["token"]), 2))
    code, err = await bad.finish(timeout=30)
    assert code != 0 and "may not publish from ::1" in err, err
    code, err = await good.finish(timeout=30)
    assert code == 0, err
    assert len(await broadcasts_of(api, "a")) == 1 and await broadcasts_of(api, "b") == []


@pytest.mark.slow
async def test_disabling_the_token_of_a_live_rtmp_publisher_stops_it(api: Api) -> None:
    tok = await create(api, record=True)
    live = await Publisher.start(ffmpeg(rtmp(api, "127.0.0.1", "cam", tok["token"]), 60))

    async def publishing() -> bool:
        return await segments_of(api, "cam") >= 2

    await eventually(publishing, timeout=20)
    account = api.service.account_id
    active = await api.ok("GET", f"/api/publish_token/active?streamId={account}/cam")
    assert active == {"tokenIds": [tok["id"]]}
    await api.ok("PATCH", "/api/publish_token/disable", {"tokenIds": active["tokenIds"]})
    code, err = await live.finish(timeout=30)
    assert code != 0 and "disabled" in err, err

    async def ended() -> bool:  # once the server has written the last segment
        (broadcast,) = await broadcasts_of(api, "cam")
        return broadcast.ended_at is not None

    await eventually(ended, timeout=20)
    assert await api.ok("GET", "/api/publish_token/active/all") == {"tokenIds": []}
