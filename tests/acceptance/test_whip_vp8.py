"""VP8 over WHIP end to end: an aiortc publisher sending only VP8 (and Opus) makes a WebM
timeline, whose recordings and clips are WebM files with VP8 and Opus as they came, stills
(and live thumbnails) decoded from them; HLS refuses such a timeline with a reason; a clip
over an H.264 broadcast and a VP8 one of the same stream is two assets, one MP4 and one WebM.
Both databases."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mediahooks.clock import iso
from support.live import WEBM, feeds_of, ffprobe, recorded, spans, subscribe
from support.media import fetch, hooks_for, link, token
from support.receiver import Receiver
from support.server import Api, ApiFactory
from support.waiting import eventually
from support.whipkit import KEYFRAMES, WhipClient, start, whip_url

pytestmark = pytest.mark.slow


async def ended(receiver: Receiver, stream: str, broadcasts: int) -> None:
    async def done() -> bool:
        return feeds_of(receiver, stream) == ["started", "ended"] * broadcasts

    await eventually(done)


async def publish(api: Api, stream: str, tok: dict[str, Any], codec: str, seconds: int) -> str:
    """Publish ``seconds`` of media with aiortc in ``codec``, then DELETE; the SDP answer."""
    client = WhipClient(whip_url(api, stream), codec=codec)
    status, answer = await client.publish(tok["token"])
    assert status == 201, answer
    await client.connected()
    before = len(await spans(api, stream))

    async def covered() -> bool:
        found = await spans(api, stream)
        return len(found) > before and found[-1][2] - found[-1][1] >= seconds * 1000

    await eventually(covered, timeout=40)
    if codec == "vp8":  # HLS cannot carry VP8: a reason, not a playlist that fails
        status, body, _ = await fetch(await link(api, stream))
        assert status == 409, body
        assert "WebM" in json.loads(body)["data"]["message"]
        # A live thumbnail is decoded from the WebM header and the newest segment.
        status, taken = await api.call("POST", "/api/thumbnails", {"streamName": stream})
        assert status == 200, taken
    assert await client.delete(api.url) == 200
    return answer


async def test_vp8_from_aiortc_makes_webm_recordings_and_clips(
    api_factory: ApiFactory, receiver: Receiver, tmp_path: Path
) -> None:
    api = await start(api_factory)
    await subscribe(api, receiver)
    clipper = await token(api, "mix")
    recorder = await token(api, "rec", record=True)

    # VP8 on two streams at once (one records), then H.264 on the first again.
    answers = await asyncio.gather(
        publish(api, "mix", clipper, "vp8", 6), publish(api, "rec", recorder, "vp8", 6)
    )
    for answer in answers:
        assert "VP8" in answer and "H264" not in answer and "opus" in answer
    await ended(receiver, "mix", 1)
    answer = await publish(api, "mix", clipper, "h264", 3)
    assert "H264" in answer and "VP8" not in answer
    await ended(receiver, "mix", 2)
    (vp8, lo, hi), (h264, h264_lo, _) = await spans(api, "mix")
    assert (vp8, h264) == ("webm", "ts")
    assert hi <= h264_lo  # the WebM timeline is timed by its own clock, not by late bytes

    ((kind, rec_lo, rec_hi),) = await spans(api, "rec")
    assert kind == "webm"
    recording = await recorded(api, receiver, recorder)
    assert recording["metadata"]["format"] == "webm"
    assert set(recording["metadata"]["sizes"]) == {"webm", "thumbnails"}
    assert urlsplit(recording["download"]["downloadUrl"]).path.endswith(".webm")
    assert {t["codec"] for t in recording["metadata"]["tracks"]} == {"vp8", "opus"}
    name, duration, codecs = await ffprobe(recording, tmp_path)
    assert "webm" in name.split(",") and codecs == WEBM
    assert abs(duration - (rec_hi - rec_lo) / 1000) <= KEYFRAMES + 0.2
    status, poster, _ = await fetch(recording["download"]["posterUrl"])
    assert status == 200 and poster.startswith(b"\xff\xd8")  # decoded from the WebM

    # A range over both broadcasts of "mix": one asset of each, each in its own container.
    body = {"streamName": "mix", "startTime": iso(lo + 1_000), "stopTime": iso(h264_lo + 2_000)}
    clips = await api.ok("POST", "/api/v3/media/assets", body)
    assert len(clips) == 2
    formats = {}
    for clip in clips:
        assert await hooks_for(receiver, "/media", clip["id"], 2) == ["processing", "completed"]
        clip = await api.ok("GET", f"/api/v3/media/assets/{clip['id']}")
        formats[clip["metadata"]["format"]] = clip
    assert set(formats) == {"webm", "mp4"}
    name, duration, codecs = await ffprobe(formats["webm"], tmp_path)
    assert "webm" in name.split(",") and codecs == WEBM
    expected = (hi - lo - 1_000) / 1000
    assert expected - 0.2 <= duration <= expected + KEYFRAMES + 0.2
    name, _, codecs = await ffprobe(formats["mp4"], tmp_path)
    assert "mp4" in name.split(",") and codecs == {"video:h264", "audio:aac"}
