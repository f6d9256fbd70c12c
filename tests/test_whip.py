"""WebRTC publishing over WHIP end to end: an aiortc publisher (H.264 and Opus) on 127.0.0.1
posts its offer to the server's WHIP endpoint; clips and recordings are cut from what it sent
and read back with ffprobe; refusals, DELETE, PATCH and CORS as the RFC has them. Both
databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import Api, ApiFactory, Receiver, eventually
from mediahooks.clock import iso
from test_media import hooks_for, token
from test_rtmp import BOTH, coverage, feeds_of, probe, recorded, subscribe
from whipkit import WhipClient

pytestmark = pytest.mark.slow

KEYFRAMES = 1.0  # MEDIAHOOKS_KEYFRAME_INTERVAL in these tests: a PLI a second


async def start(api_factory: ApiFactory, **overrides: Any) -> Api:
    return await api_factory(webrtc_addresses="127.0.0.1", keyframe_interval=KEYFRAMES, **overrides)


def whip_url(api: Api, stream: str) -> str:
    return f"{api.url}/api/whip/{stream}"


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
