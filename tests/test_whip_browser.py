"""A browser tab publishes over WHIP: headless Chromium, its fake camera and microphone, a page
of another origin using the dashboard's `whip.js`; the recording is read back with ffprobe.
Both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from browser import chromium, new_tab
from conftest import ApiFactory, Receiver, eventually
from test_media import token
from test_rtmp import BOTH, coverage, feeds_of, probe, recorded, subscribe
from test_whip import KEYFRAMES, start, whip_url

pytestmark = pytest.mark.slow

# Fake media devices, no permission prompt, and host candidates on loopback (Chromium leaves
# them out otherwise, and would hide the others behind mDNS names).
WEBRTC = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)

PAGE = """<!doctype html>
<meta charset="utf-8"><title>studio</title>
<script src="{api}/static/whip.js"></script>
<script>
window.goLive = async ([endpoint, token]) => {{
  const media = await navigator.mediaDevices.getUserMedia(
    {{video: {{width: 640, height: 360, frameRate: 30}}, audio: true}});
  window.live = await mediahooksWhip.publish(endpoint, token, media);
  return window.live.location;
}};
window.camerasOff = () => window.live.pc.getSenders().forEach((s) => s.track.stop());
</script>
"""


async def studio(api_url: str) -> AsyncIterator[str]:
    """A page on another origin (another port) that publishes to ``api_url``."""
    app = web.Application()

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE.format(api=api_url), content_type="text/html")

    async def no_icon(_: web.Request) -> web.Response:
        return web.Response(status=204)

    app.router.add_get("/", page)
    app.router.add_get("/favicon.ico", no_icon)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_a_browser_tab_publishes_and_its_recording_ends_when_its_media_stops(
    api_factory: ApiFactory, receiver: Receiver, tmp_path: Path
) -> None:
    api = await start(api_factory, idle_timeout=3)
    await subscribe(api, receiver)
    tok = await token(api, "tab", record=True)
    pages = studio(api.url)
    page_url = await anext(pages)
    try:
        async with chromium(*WEBRTC) as browser:
            tab = await new_tab(browser, page_url)
            await tab.open("")
            location = await tab.page.evaluate("goLive", [whip_url(api, "tab"), tok["token"]])
            assert location.startswith(api.url + "/api/whip/tab/")

            async def covered() -> bool:
                try:
                    lo, hi = await coverage(api, "tab")
                except TypeError:
                    return False
                return hi - lo >= 12_000

            await eventually(covered, timeout=60)
            # The camera and microphone go off without a DELETE: the idle timeout ends it.
            await tab.page.evaluate("camerasOff")

            async def ended() -> bool:
                return feeds_of(receiver, "tab") == ["started", "ended"]

            await eventually(ended, timeout=30)
            assert tab.errors == []
    finally:
        await pages.aclose()
    lo, hi = await coverage(api, "tab")
    duration, codecs = await probe(await recorded(api, receiver, tok), tmp_path)
    assert codecs == BOTH
    assert abs(duration - (hi - lo) / 1000) <= KEYFRAMES + 0.2
