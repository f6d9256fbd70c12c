"""A real headless Chromium driven by Playwright, for the dashboard's tests, and the page of
another origin from which the WHIP tests' tab publishes (`studio`).

Chromium is Debian's package (`/usr/bin/chromium`, or MEDIAHOOKS_TEST_CHROMIUM); Playwright
never downloads a browser of its own. A missing Chromium fails the tests that need it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from mediahooks.clock import now_ms

from .server import API_SECRET
from .waiting import eventually

CHROMIUM = os.environ.get("MEDIAHOOKS_TEST_CHROMIUM", "/usr/bin/chromium")
# Headless as root, and quiet: this machine has no network beyond loopback, and Chromium's
# background fetches would only fill the log with refused connections.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@asynccontextmanager
async def chromium(*extra: str) -> AsyncIterator[Browser]:
    """Chromium with the usual flags and ``extra`` ones."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is required at {CHROMIUM}: apt-get install chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra])
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """A page of the dashboard, and every console error and uncaught exception it showed."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)

    async def open(self, path: str) -> None:
        await self.page.goto(self.base + path)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{self.page.url}: {message.text}")


async def new_tab(browser: Browser, base: str, viewport: dict[str, int] = DESKTOP) -> Tab:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    tab = Tab(page, base)
    page.on("console", tab._console)
    page.on("pageerror", lambda exc: tab.errors.append(f"{page.url}: {exc}"))
    return tab


async def sign_in(tab: Tab, secret: str = API_SECRET) -> None:
    """Sign in as a person would, with the keyboard: the secret field has the focus."""
    await tab.open("/signin")
    # Typing before the browser applied `autofocus` (it can lag on a busy machine) would type
    # into nothing.
    await expect(tab.page.locator("#secret")).to_be_focused()
    await tab.page.keyboard.type(secret)
    await tab.page.keyboard.press("Enter")
    await tab.page.wait_for_url("**/streams")


async def caught_up(tab: Tab, stream: str, seconds: int) -> None:
    """Wait until the streams page offers ``seconds`` of ``stream`` ending about now."""

    async def ready() -> bool:
        await tab.open("/streams")
        form = tab.page.locator(".stream", has_text=stream).locator("form.clip-form")
        if not await form.count():
            return False
        lo = int(await form.get_attribute("data-origin") or 0)
        hi = int(await form.get_attribute("data-until") or 0)
        return hi - lo >= seconds * 1000 and now_ms() - hi < 3000

    await eventually(ready, timeout=60)


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
  const live = await mediahooksWhip.publish(endpoint, token, media);
  window.lives.push(live);
  return live.location;
}};
window.lives = [];
window.camerasOff = () => window.lives.forEach(
  (live) => live.pc.getSenders().forEach((s) => s.track.stop()));
</script>
"""


async def studio(api_url: str) -> AsyncGenerator[str]:
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
