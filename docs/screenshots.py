"""Make the dashboard screenshots of the README: a real service on a temporary SQLite database,
a live synthetic stream with a clip, two webhooks (one answering 500), Debian's Chromium.

Run: ``.venv/bin/python docs/screenshots.py`` (writes docs/screenshots/*.png).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from playwright.async_api import Page, async_playwright

from mediahooks import server
from mediahooks.clock import iso, now_ms
from mediahooks.config import Settings
from mediahooks.media import publisher, synthetic
from mediahooks.service import Service

OUT = Path(__file__).parent / "screenshots"
SECRET = "screenshot-secret"
CHROMIUM = os.environ.get("MEDIAHOOKS_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


async def receiver() -> tuple[web.AppRunner, str]:
    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"received": True})

    async def broken(_request: web.Request) -> web.Response:
        return web.Response(status=503, text="upstream database unavailable")

    app = web.Application()
    app.router.add_post("/hooks/media", ok)
    app.router.add_post("/hooks/billing", broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with session.request(method, url, json=body) as resp:
        return (await resp.json())["data"]


async def seed(base: str, hooks: str) -> tuple[asyncio.Task[Any], str]:
    auth = {"Authorization": f"Bearer {SECRET}"}
    async with aiohttp.ClientSession(headers=auth) as session:
        for path, flt in (("/hooks/media", None), ("/hooks/billing", "^stage")):
            body = {"url": hooks + path, "isFeedHooks": True, "isMediaHooks": True, "filter": flt}
            await call(session, "POST", base + "/api/webhooks", body)
        token = await call(
            session,
            "POST",
            base + "/api/publish_token",
            {"label": "stage camera", "streams": [{"streamName": "stage"}], "clip": True},
        )
    made = synthetic.iter_segments(240, "ts", width=640, height=360, fps=30)
    segments = await asyncio.to_thread(list, made)
    publishing = asyncio.create_task(
        publisher.publish(
            f"{base}/ingest/stage", token["token"], segments, True, start_ms=now_ms() - 90_000
        )
    )
    await asyncio.sleep(5)
    async with aiohttp.ClientSession(headers=auth) as session:
        clips = []
        for start, stop, name in ((80, 50, "opening"), (45, 15, "keynote highlight")):
            body = {
                "streamName": "stage",
                "startTime": iso(now_ms() - start * 1000),
                "stopTime": iso(now_ms() - stop * 1000),
                "name": name,
            }
            clips += await call(session, "POST", base + "/api/v3/media/assets", body)
        for _ in range(120):
            found = await call(session, "GET", f"{base}/api/v3/media/assets/{clips[-1]['id']}")
            if found["status"] == "complete":
                break
            await asyncio.sleep(0.5)
        return publishing, str(clips[-1]["id"])


async def shoot(page: Page, base: str, path: str, name: str) -> None:
    await page.goto(base + path)
    await page.wait_for_timeout(800)
    await page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/mediahooks.db",
            data_dir=Path(tmp),
            api_secret=SECRET,
            allow_private_targets="true",
            retry_schedule="1,2",
            retry_jitter=0,
            # The stream starts with 90 s of history pushed at once: believe its dates.
            max_clock_skew=3600,
            # It publishes over HLS only: no RTMP or SRT port to take from a running service.
            rtmp_port=None,
            srt_port=None,
        )
        service = Service(settings)
        await service.open()
        running = await server.start(service, "127.0.0.1", 0)
        runner, hooks = await receiver()
        try:
            publishing, asset = await seed(running.url, hooks)
            await asyncio.sleep(6)  # the failing webhook runs out of attempts
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                await page.goto(running.url + "/signin")
                await page.fill("#secret", SECRET)
                await page.keyboard.press("Enter")
                await page.wait_for_url("**/streams")
                await shoot(page, running.url, "/streams", "streams")
                await shoot(page, running.url, "/assets", "assets")
                await shoot(page, running.url, f"/assets/{asset}", "asset")
                await shoot(page, running.url, "/webhooks/2", "webhook")
                await page.locator("#deliveries a").first.click()
                await page.wait_for_timeout(500)
                await page.screenshot(path=str(OUT / "delivery.png"), full_page=True)
                phone = await browser.new_page(viewport={"width": 390, "height": 844})
                await phone.context.add_cookies(await page.context.cookies())
                await shoot(phone, running.url, f"/assets/{asset}", "asset-phone")
                await browser.close()
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
        finally:
            await runner.cleanup()
            await running.stop()
            await service.close()


if __name__ == "__main__":
    asyncio.run(main())
