"""WebRTC publishing over WHIP end to end: an aiortc publisher (H.264 and Opus) on 127.0.0.1
posts its offer to the server's WHIP endpoint; clips and recordings are cut from what it sent
and read back with ffprobe; refusals, DELETE, PATCH and CORS as the RFC has them. Both
databases."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from multidict import CIMultiDictProxy
from sqlalchemy import select

from mediahooks.clock import iso
from mediahooks.store.schema import broadcasts, segments
from support.live import BOTH, coverage, feeds_of, probe, recorded, subscribe
from support.media import hooks_for, token
from support.receiver import Receiver
from support.server import ApiFactory
from support.waiting import eventually
from support.whipkit import KEYFRAMES, WhipClient, start, whip_url

pytestmark = pytest.mark.slow


async def test_aiortc_publishes_h264_a_clip_is_cut_and_delete_ends_it(
    api_factory: ApiFactory, receiver: Receiver, tmp_path: Path
) -> None:
    api = await start(api_factory)
    await subscribe(api, receiver)
    tok = await token(api, "cam")
    client = WhipClient(whip_url(api, "cam"))
    status, answer = await client.publish(tok["token"])
    assert status == 201, answer
    assert answer.startswith("v=0") and "H264" in answer and "opus" in answer
    assert "VP8" not in answer  # H.264 preferred, the only video codec answered
    assert client.headers["Content-Type"].startswith("application/sdp")
    assert client.location is not None and client.location.startswith("/api/whip/cam/")
    assert client.headers["ETag"]
    await client.connected()

    async def covered() -> bool:
        try:
            lo, hi = await coverage(api, "cam")
        except TypeError:
            return False
        return hi - lo >= 14_000

    await eventually(covered, timeout=40)
    assert await client.delete(api.url) == 200

    async def ended() -> bool:
        return feeds_of(receiver, "cam") == ["started", "ended"]

    await eventually(ended)
    lo, _ = await coverage(api, "cam")
    body = {"streamName": "cam", "startTime": iso(lo + 2_000), "stopTime": iso(lo + 12_000)}
    (clip,) = await api.ok("POST", "/api/v3/media/assets", body)
    assert await hooks_for(receiver, "/media", clip["id"], 2) == ["processing", "completed"]
    clip = await api.ok("GET", f"/api/v3/media/assets/{clip['id']}")
    duration, codecs = await probe(clip, tmp_path)
    assert codecs == BOTH
    assert 10 - 0.2 <= duration <= 10 + KEYFRAMES + 0.2  # the start snaps back to a keyframe


async def test_a_publisher_that_vanishes_ends_after_the_idle_timeout_with_its_recording(
    api_factory: ApiFactory, receiver: Receiver, tmp_path: Path
) -> None:
    api = await start(api_factory, idle_timeout=3)
    await subscribe(api, receiver)
    tok = await token(api, "gone", record=True)
    client = WhipClient(whip_url(api, "gone"))
    assert (await client.publish(tok["token"]))[0] == 201
    await client.connected()

    async def covered() -> bool:
        try:
            lo, hi = await coverage(api, "gone")
        except TypeError:
            return False
        return hi - lo >= 5_000

    await eventually(covered, timeout=40)
    await client.drop()

    async def ended() -> bool:
        return feeds_of(receiver, "gone") == ["started", "ended"]

    await eventually(ended, timeout=30)
    lo, hi = await coverage(api, "gone")
    recording = await recorded(api, receiver, tok)
    duration, codecs = await probe(recording, tmp_path)
    assert codecs == BOTH
    assert abs(duration - (hi - lo) / 1000) <= KEYFRAMES + 0.2
    await client.pc.close()


async def test_lost_packets_are_gaps_and_never_broken_pictures(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await start(api_factory)
    await subscribe(api, receiver)
    tok = await token(api, "lossy")
    client = WhipClient(whip_url(api, "lossy"))
    assert (await client.publish(tok["token"]))[0] == 201
    await client.connected()
    (whip,) = api.service.whip.sessions.values()

    async def covered(seconds: float) -> bool:
        try:
            lo, hi = await coverage(api, "lossy")
        except TypeError:
            return False
        return hi - lo >= seconds * 1000

    await eventually(lambda: covered(3), timeout=40)
    client.lose_packets(40)
    await asyncio.sleep(3)
    client.lose_packets(0)
    await eventually(lambda: covered(12), timeout=60)
    gaps = whip._continuity.gaps
    assert client.lost > 0 and gaps > 0
    assert await client.delete(api.url) == 200

    async def ended() -> bool:
        return feeds_of(receiver, "lossy") == ["started", "ended"]

    await eventually(ended)
    query = (
        select(segments.c.path)
        .select_from(segments.join(broadcasts))
        .where(broadcasts.c.stream_name == "lossy")
        .order_by(segments.c.id)
    )
    async with api.service.db.engine.connect() as conn:
        paths = list((await conn.execute(query)).scalars())
    # The sender's frames are exactly 1/30 s apart: where frames are missing, the timeline has
    # a gap, and the first picture after each gap is a keyframe (nothing that referenced what
    # was lost got in). Every picture decodes.
    video: list[tuple[int, bool]] = []
    pictures = 0
    for path in paths:
        with av.open(path) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    video.append((packet.pts, packet.is_keyframe))
                    pictures += len(stream.codec_context.decode(packet))
    step = 90_000 // 30
    jumps = [after for before, after in itertools.pairwise(video) if after[0] - before[0] > step]
    assert jumps, "no gap in the timeline where packets were lost"
    assert all(keyframe for _, keyframe in jumps), jumps
    assert pictures >= len(video) - 2  # the decoder's delay aside, every picture came out


async def whip_call(
    method: str, url: str, body: str = "", **headers: str
) -> tuple[int, CIMultiDictProxy[str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers) as resp,
    ):
        text = await resp.text()
        parsed = json.loads(text) if resp.content_type == "application/json" else text
        return resp.status, resp.headers, parsed


async def test_refusals_trickle_and_cors(api_factory: ApiFactory, receiver: Receiver) -> None:
    ice = [{"urls": "turn:turn.example.net:3478", "username": "u", "credential": "p"}]
    api = await start(api_factory, webrtc_ice_servers=ice)
    await subscribe(api, receiver)
    tok = await token(api, "desk")
    url = whip_url(api, "desk")
    origin = "https://studio.example.com"
    offer = await WhipClient(url).offer()
    sdp = {"Content-Type": "application/sdp", "Origin": origin}

    # A browser's preflight: any origin may ask; Link tells the ICE servers.
    status, headers, _ = await whip_call(
        "OPTIONS", url, Origin=origin, **{"Access-Control-Request-Method": "POST"}
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert {"Location", "ETag", "Link"} <= set(headers["Access-Control-Expose-Headers"].split(", "))
    assert headers.getall("Link") == [
        '<turn:turn.example.net:3478>; rel="ice-server"; username="u"; credential="p"; '
        'credential-type="password"'
    ]

    async def refused(status: int, body: str, target: str = url, **extra: str) -> str:
        got, headers, answer = await whip_call("POST", target, body, **{**sdp, **extra})
        assert got == status, answer
        assert answer["status"] == "fail"
        assert headers["Access-Control-Allow-Origin"] == origin  # the page can show why
        return str(answer["data"]["message"])

    assert "Missing publish token" in await refused(401, offer)
    assert "Unknown publish token" in await refused(401, offer, Authorization="Bearer nope")
    other = whip_url(api, "elsewhere")
    bearer = f"Bearer {tok['token']}"
    assert "may not publish" in await refused(403, offer, other, Authorization=bearer)
    assert "Stream names" in await refused(
        400, offer, whip_url(api, "bad%20name"), Authorization=bearer
    )
    assert "application/sdp" in await refused(
        415, offer, Authorization=bearer, **{"Content-Type": "text/plain"}
    )
    assert "not an SDP offer" in await refused(400, "hello", Authorization=bearer)
    vp9 = offer.replace("H264", "VP9")  # VP8 is taken (WebM), VP9 not: aiortc lacks it
    assert "send H.264" in await refused(400, vp9, Authorization=bearer)
    # A token that lists origins takes a browser's page from those only.
    await api.ok("PUT", f"/api/publish_token/{tok['id']}", {"allowedOrigins": ["example.net"]})
    assert "origin" in (await refused(403, offer, Authorization=bearer)).lower()
    await api.ok("PUT", f"/api/publish_token/{tok['id']}", {"allowedOrigins": [origin]})

    # The token in the query, as OBS and the platform's urls carry it.
    first = WhipClient(f"{url}?auth={tok['token']}")
    status, _ = await first.publish("", Origin=origin)
    assert status == 201
    assert first.headers["Access-Control-Allow-Origin"] == origin
    assert "already live" in await refused(409, offer, Authorization=bearer)

    session = api.url + (first.location or "")
    status, headers, answer = await whip_call(
        "PATCH", session, "a=end-of-candidates", Origin=origin
    )
    assert status == 405 and "Trickle ICE" in answer["data"]["message"]
    assert "PATCH" not in headers["Allow"]
    status, _, _ = await whip_call("DELETE", session + "x")
    assert status == 404
    assert await first.delete(api.url) == 200
    status, _, answer = await whip_call("DELETE", session)
    assert status == 404 and "has ended" in answer["data"]["message"]

    async def ended() -> bool:
        return feeds_of(receiver, "desk") == ["started", "ended"]

    await eventually(ended)
