"""A browser tab publishes VP8 only over WHIP (headless Chromium, fake camera and microphone,
a page of another origin, `whip.js` asked for VP8): its recording and a clip are WebM files
with VP8 and Opus, read back with ffprobe. Both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediahooks.clock import iso
from support.browser import WEBRTC, chromium, new_tab, studio
from support.live import WEBM, extents, feeds_of, ffprobe, recorded, spans, subscribe
from support.media import hooks_for, token
from support.receiver import Receiver
from support.server import ApiFactory
from support.waiting import eventually
from support.whipkit import KEYFRAMES, start, whip_url

pytestmark = pytest.mark.slow

SECONDS = 14  # how long the tab publishes

GO_LIVE = """async ([endpoint, token]) => {
  const media = await navigator.mediaDevices.getUserMedia(
    {video: {width: 640, height: 360, frameRate: 30}, audio: true});
  const live = await mediahooksWhip.publish(endpoint, token, media, {video: "VP8"});
  window.lives.push(live);
  return live.location;
}"""


async def test_a_browser_tab_sending_vp8_gets_webm_clips_and_recordings(
    api_factory: ApiFactory, receiver: Receiver, tmp_path: Path
) -> None:
    api = await start(api_factory)
    await subscribe(api, receiver)
    recorder = await token(api, "vp8-tab", record=True)
    clipper = await token(api, "vp8-clip")
    pages = studio(api.url)
    page_url = await anext(pages)
    try:
        async with chromium(*WEBRTC) as browser:
            tab = await new_tab(browser, page_url)
            await tab.open("")
            for stream, tok in (("vp8-tab", recorder), ("vp8-clip", clipper)):
                location = await tab.page.evaluate(GO_LIVE, [whip_url(api, stream), tok["token"]])
                assert location.startswith(f"{api.url}/api/whip/{stream}/")

            async def covered() -> bool:
                for stream in ("vp8-tab", "vp8-clip"):
                    found = await spans(api, stream)
                    if not found or found[0][2] - found[0][1] < SECONDS * 1000:
                        return False
                return True

            await eventually(covered, timeout=SECONDS + 60)
            await tab.page.evaluate("Promise.all(window.lives.map((live) => live.stop()))")

            async def ended() -> bool:
                return all(
                    feeds_of(receiver, s) == ["started", "ended"] for s in ("vp8-tab", "vp8-clip")
                )

            await eventually(ended, timeout=30)
            assert tab.errors == []
    finally:
        await pages.aclose()

    ((kind, lo, hi),) = await spans(api, "vp8-tab")
    assert kind == "webm"
    recording = await recorded(api, receiver, recorder)
    assert recording["metadata"]["format"] == "webm"
    name, duration, codecs = await ffprobe(recording, tmp_path)
    assert "webm" in name.split(",") and codecs == WEBM
    assert abs(duration - (hi - lo) / 1000) <= KEYFRAMES + 0.2
    tracks = extents(tmp_path / f"{recording['id']}.webm")
    assert abs(tracks["audio"][1] - tracks["video"][1]) <= 0.1

    ((kind, lo, _),) = await spans(api, "vp8-clip")
    assert kind == "webm"
    body = {"streamName": "vp8-clip", "startTime": iso(lo + 2_000), "stopTime": iso(lo + 12_000)}
    (clip,) = await api.ok("POST", "/api/v3/media/assets", body)
    assert await hooks_for(receiver, "/media", clip["id"], 2) == ["processing", "completed"]
    clip = await api.ok("GET", f"/api/v3/media/assets/{clip['id']}")
    assert clip["metadata"]["format"] == "webm"
    name, duration, codecs = await ffprobe(clip, tmp_path)
    assert "webm" in name.split(",") and codecs == WEBM
    assert 10 - 0.2 <= duration <= 10 + KEYFRAMES + 0.2  # the start snaps back to a keyframe
    # Chromium's Opus is kept whole, in step with the video (within a packet and a frame).
    tracks = extents(tmp_path / f"{clip['id']}.webm")
    assert abs(tracks["audio"][0] - tracks["video"][0]) <= 0.1
    assert abs(tracks["audio"][1] - tracks["video"][1]) <= 0.1
