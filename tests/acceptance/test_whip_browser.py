"""A browser tab publishes over WHIP: headless Chromium, its fake camera and microphone, a page
of another origin using the dashboard's `whip.js`; the recording is read back with ffprobe.
Both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from mediahooks.clock import iso
from support.browser import WEBRTC, chromium, new_tab, sign_in, studio
from support.live import BOTH, coverage, feeds_of, probe, recorded, subscribe
from support.media import hooks_for, token
from support.receiver import Receiver
from support.server import ApiFactory
from support.waiting import eventually
from support.whipkit import KEYFRAMES, start, whip_url

pytestmark = pytest.mark.slow


SECONDS = 30  # how long the tab publishes


async def test_a_browser_tab_publishes_a_clip_and_a_recording_ended_when_its_media_stops(
    api_factory: ApiFactory, receiver: Receiver, tmp_path: Path
) -> None:
    api = await start(api_factory, idle_timeout=3)
    await subscribe(api, receiver)
    recorder = await token(api, "tab", record=True)
    clipper = await token(api, "tab-clip")
    pages = studio(api.url)
    page_url = await anext(pages)
    try:
        async with chromium(*WEBRTC) as browser:
            tab = await new_tab(browser, page_url)
            await tab.open("")
            for stream, tok in (("tab", recorder), ("tab-clip", clipper)):
                location = await tab.page.evaluate("goLive", [whip_url(api, stream), tok["token"]])
                assert location.startswith(f"{api.url}/api/whip/{stream}/")

            async def covered() -> bool:
                for stream in ("tab", "tab-clip"):
                    try:
                        lo, hi = await coverage(api, stream)
                    except TypeError:
                        return False
                    if hi - lo < SECONDS * 1000:
                        return False
                return True

            await eventually(covered, timeout=SECONDS + 60)
            # The camera and microphone go off without a DELETE: the idle timeout ends it.
            await tab.page.evaluate("camerasOff")

            async def ended() -> bool:
                return all(
                    feeds_of(receiver, s) == ["started", "ended"] for s in ("tab", "tab-clip")
                )

            await eventually(ended, timeout=30)
            assert tab.errors == []
    finally:
        await pages.aclose()

    lo, hi = await coverage(api, "tab")
    duration, codecs = await probe(await recorded(api, receiver, recorder), tmp_path)
    assert codecs == BOTH
    assert abs(duration - (hi - lo) / 1000) <= KEYFRAMES + 0.2

    lo, _ = await coverage(api, "tab-clip")
    body = {"streamName": "tab-clip", "startTime": iso(lo + 5_000), "stopTime": iso(lo + 25_000)}
    (clip,) = await api.ok("POST", "/api/v3/media/assets", body)
    assert await hooks_for(receiver, "/media", clip["id"], 2) == ["processing", "completed"]
    duration, codecs = await probe(
        await api.ok("GET", f"/api/v3/media/assets/{clip['id']}"), tmp_path
    )
    assert codecs == BOTH
    assert 20 - 0.2 <= duration <= 20 + KEYFRAMES + 0.2  # the start snaps back to a keyframe


async def test_go_live_from_the_dashboard_with_a_test_pattern(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await start(api_factory)
    await subscribe(api, receiver)
    tok = await token(api, "studio-b")
    async with chromium(*WEBRTC) as browser:
        tab = await new_tab(browser, api.url)
        await sign_in(tab)
        await tab.open("/streams")
        page = tab.page
        await page.get_by_text("Go live from this browser").click()
        await page.get_by_label("Publish token").select_option(tok["token"])
        await page.get_by_label("Stream name").fill("studio-b")
        await page.get_by_label("Test pattern").check()
        await page.get_by_role("button", name="Go live").click()
        await expect(page.get_by_role("status")).to_have_text("Live as studio-b.", timeout=15_000)

        async def covered() -> bool:
            try:
                lo, hi = await coverage(api, "studio-b")
            except TypeError:
                return False
            return hi - lo >= 4_000

        await eventually(covered, timeout=40)
        await page.get_by_role("button", name="Stop").click()
        await expect(page.get_by_role("status")).to_have_text("Stopped.")

        async def ended() -> bool:
            return feeds_of(receiver, "studio-b") == ["started", "ended"]

        await eventually(ended)
        assert tab.errors == []
