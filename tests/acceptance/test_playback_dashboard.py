"""The dashboard plays, in a real headless Chromium with the hls.js the package ships: the live
stream on the streams page, a preview of the range picked for a clip, and a clip's range on its
page while its MP4 is still to be cut. Both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from support.browser import caught_up, chromium, new_tab, sign_in
from support.live import live_stream, publish_token, stop
from support.server import ApiFactory


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


ADVANCES = """([selector, since]) => {
  const v = document.querySelector(selector);
  return v && v.currentTime > since + 1 ? v.currentTime : false;
}"""
LOADED = """(selector) => {
  const v = document.querySelector(selector);
  return v && v.readyState >= 1 && v.duration > 0 && isFinite(v.duration) ? v.duration : false;
}"""


async def test_the_dashboard_plays_live_previews_a_range_and_a_processing_clip(
    api_factory: ApiFactory, browser: Browser
) -> None:
    api = await api_factory(dispatch=False)  # no media worker: the clip stays processing
    tab = await new_tab(browser, api.url)
    await sign_in(tab)
    publishing = await live_stream(api, await publish_token(api, "stage"), "stage", 20, 60)
    try:
        await caught_up(tab, "stage", 15)
        page = tab.page
        card = page.locator(".stream", has_text="stage")
        await expect(card.locator("video.live-player")).to_be_visible()
        assert await page.evaluate("typeof window.Hls") == "function"  # ours, not the browser's
        # The live player plays: its clock advances with the stream.
        started = await page.wait_for_function(ADVANCES, arg=[".live-player", 0], timeout=30_000)
        since = await started.json_value()
        await page.wait_for_function(ADVANCES, arg=[".live-player", since], timeout=15_000)

        # The picked range plays as a preview of about its length.
        await card.locator("input[name=from]").fill("2")
        await card.locator("input[name=to]").fill("14")
        await card.get_by_role("button", name="Preview this range").click()
        preview = await page.wait_for_function(LOADED, arg=".preview", timeout=30_000)
        assert 11 <= await preview.json_value() <= 13.5

        # A clip: its page plays the range from the timeline while the MP4 waits to be cut.
        await card.get_by_role("button", name="Last 10 s").click()
        await page.wait_for_url("**/assets/*")
        await expect(page.locator("#asset-status")).to_have_text("processing")
        duration = await page.wait_for_function(LOADED, arg="#preview", timeout=30_000)
        assert 9 <= await duration.json_value() <= 11.5
    finally:
        await stop(publishing)
    assert tab.errors == []
