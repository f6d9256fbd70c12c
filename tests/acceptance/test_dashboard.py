"""The dashboard in a real headless Chromium against a real server: sign-in, a clip of a live
stream turning `complete` without a reload and playing, webhooks with their test events and
attempts, a failing receiver fixed and retried; every page at a phone's width and a desktop's.
Sign-in and CSRF refusals are checked over plain HTTP. Both databases."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect
from yarl import URL

from mediahooks.clock import iso, now_ms
from mediahooks.media import publisher, synthetic
from support.browser import DESKTOP, PHONE, caught_up, chromium, new_tab, sign_in
from support.live import live_stream, publish_token, stop
from support.receiver import Receiver
from support.server import API_SECRET, Api
from support.waiting import eventually

SMALL = {"width": 320, "height": 180, "fps": 30}
PAGES = ["/streams", "/assets", "/webhooks"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_a_clip_of_a_live_stream_turns_complete_without_reloading_and_plays(
    api: Api, browser: Browser
) -> None:
    tab = await new_tab(browser, api.url)
    await sign_in(tab)
    publishing = await live_stream(api, await publish_token(api, "stage"), "stage", 35, 90)
    try:
        await caught_up(tab, "stage", 30)
        card = tab.page.locator(".stream", has_text="stage")
        await expect(card.locator(".badge")).to_have_text("live")
        await card.get_by_role("button", name="Last 30 s").click()
        await tab.page.wait_for_url(re.compile(r"/assets/[0-9a-f]{32}$"))
        status = tab.page.locator("#asset-status")
        await expect(status).to_have_text("processing")
        await tab.page.evaluate("window.stayed = true")  # gone if the page reloads

        await expect(status).to_have_text("complete", timeout=60_000)
        assert await tab.page.evaluate("window.stayed === true"), "the page reloaded"
        duration = await tab.page.wait_for_function(
            "() => { const v = document.getElementById('player');"
            " return v && v.readyState >= 1 && v.duration > 0 ? v.duration : false; }",
            timeout=30_000,
        )
        assert 26 <= await duration.json_value() <= 31
        await expect(tab.page.get_by_role("link", name="Download MP4")).to_be_visible()
    finally:
        await stop(publishing)
    assert tab.errors == []


async def test_webhooks_tests_attempts_and_a_failing_receiver_fixed_and_retried(
    api: Api, browser: Browser, receiver: Receiver
) -> None:
    answer: dict[str, Any] = {"status": 200, "text": "thanks"}

    async def scripted(_request: web.Request) -> web.Response:
        return web.Response(status=answer["status"], text=str(answer["text"]))

    url = receiver.on("/hook", scripted)
    tab = await new_tab(browser, api.url)
    await sign_in(tab)
    page = tab.page

    await tab.open("/webhooks")
    await page.get_by_label("URL").fill(url)
    await expect(page.get_by_label("Media (clips and recordings)")).to_be_checked()
    await page.get_by_label("Filter").fill("^stage")
    await page.get_by_role("button", name="Add webhook").click()
    await page.wait_for_url(re.compile(r"/webhooks/\d+$"))
    await expect(page.locator(".flash")).to_have_text("Webhook created.")
    await expect(page.locator("#secret")).to_be_hidden()
    await page.get_by_text("Reveal the secret").click()
    [webhook] = await api.ok("GET", "/api/webhooks/list")
    await expect(page.locator("#secret")).to_have_text(webhook["secret"])

    # A test event: its delivery shows up, then turns succeeded, without a reload.
    await page.get_by_role("button", name="Send a test event").click()
    await page.evaluate("window.stayed = true")
    rows = page.locator("#deliveries tbody tr[data-delivery]")
    await expect(rows.first.locator(".badge")).to_have_text("succeeded", timeout=15_000)
    assert await page.evaluate("window.stayed === true")
    await rows.first.locator("a").click()
    attempt = page.locator(".attempt").first
    await expect(attempt.locator(".status-code")).to_have_text("200")
    await expect(attempt.locator(".response-body")).to_have_text("thanks")
    await attempt.get_by_text("Request: POST").click()
    await expect(attempt.locator("table.headers").first).to_contain_text("webhook-signature")

    # The receiver breaks: the next test event fails, live, with its answer on record.
    answer.update(status=500, text="database is down")
    await page.get_by_role("link", name=re.compile(r"^← Webhook \d+$")).click()
    await page.get_by_role("button", name="Send a test event").click()
    await page.evaluate("window.stayed = true")
    await expect(rows.first.locator(".badge")).to_have_text("failed", timeout=20_000)
    assert await page.evaluate("window.stayed === true")
    await rows.first.locator("a").click()
    await expect(page.locator("#delivery-status")).to_have_text("failed")
    await expect(page.locator(".attempt .status-code").first).to_have_text("500")
    await expect(page.locator(".attempt .response-body").first).to_have_text("database is down")

    # Fixed: one retry and the same delivery succeeds, shown on the same page.
    answer.update(status=200, text="back again")
    await page.get_by_role("button", name="Send again").click()
    await expect(page.locator(".flash")).to_have_text("Queued again: it goes out now.")
    await page.evaluate("window.stayed = true")
    await expect(page.locator("#delivery-status")).to_have_text("succeeded", timeout=15_000)
    assert await page.evaluate("window.stayed === true")
    await expect(page.locator(".attempt .response-body").first).to_have_text("back again")
    assert len(receiver.at("/hook")) == 1 + 4 + 1
    assert tab.errors == []


async def seed(api: Api, receiver: Receiver) -> dict[str, str]:
    """One of everything the pages show: a webhook with a delivery, a broadcast, a clip."""
    webhook = await api.webhook(receiver.url + "/seed")
    await api.ok("POST", "/api/webhooks/test/Media")
    token = await publish_token(api, "lobby")
    start = now_ms() - 14_000
    segments = synthetic.iter_segments(12, "ts", **SMALL)
    await publisher.publish(
        f"{api.url}/ingest/lobby", token, segments, realtime=False, start_ms=start
    )
    body = {"streamName": "lobby", "startTime": iso(start), "stopTime": iso(start + 11_000)}
    [asset] = await api.ok("POST", "/api/v3/media/assets", body)
    await receiver.wait_for(1, "/seed")

    async def delivered() -> bool:
        found = await api.ok("GET", f"/api/webhooks/{webhook['id']}/deliveries")
        return bool(found) and found[0]["status"] == "succeeded"

    await eventually(delivered)
    delivery = (await api.ok("GET", f"/api/webhooks/{webhook['id']}/deliveries"))[-1]
    return {
        "webhook": f"/webhooks/{webhook['id']}",
        "delivery": f"/webhooks/{webhook['id']}/deliveries/{delivery['id']}",
        "asset": f"/assets/{asset['id']}",
    }


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.ariaLabel)
  .map(el => el.outerHTML)"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_every_page_fits_the_screen_labels_its_fields_and_logs_no_error(
    api: Api, browser: Browser, receiver: Receiver, viewport: dict[str, int]
) -> None:
    paths = await seed(api, receiver)
    tab = await new_tab(browser, api.url, viewport)
    await tab.open("/streams")
    assert tab.page.url.endswith("/signin?next=/streams")
    for path in ["/signin"]:
        assert await tab.page.evaluate(UNLABELLED) == [], path
    await sign_in(tab)
    for path in [*PAGES, *paths.values()]:
        await tab.open(path)
        await expect(tab.page.locator("h1")).to_be_visible()
        assert await tab.page.evaluate(OVERFLOW) <= 0, f"{path} is wider than the screen"
        assert await tab.page.evaluate(UNLABELLED) == [], path
    assert tab.errors == []


ACTIONS = [
    "/streams/clip",
    "/assets/" + "0" * 32 + "/delete",
    "/webhooks",
    "/webhooks/1",
    "/webhooks/1/rotate",
    "/webhooks/1/enable",
    "/webhooks/1/test",
    "/webhooks/1/delete",
    "/webhooks/1/recover",
    "/webhooks/1/deliveries/1/retry",
    "/signout",
]


async def test_sign_in_is_required_and_forged_forms_are_refused(
    api: Api, receiver: Receiver
) -> None:
    webhook = await api.webhook(receiver.url + "/kept")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser_like:
        # Signed out: every page leads to the sign-in page, every action is refused.
        for path in [*PAGES, f"/webhooks/{webhook['id']}", "/live"]:
            async with browser_like.get(api.url + path, allow_redirects=False) as resp:
                assert resp.status == 303, path
                assert resp.headers["location"].startswith("/signin"), path
        for path in ACTIONS[:-1]:
            async with browser_like.post(api.url + path, data={"csrf": "x"}) as resp:
                assert resp.status == 401, path

        # The sign-in form itself wants its token; a wrong secret is refused with a reason.
        async with browser_like.post(
            api.url + "/signin", data={"secret": API_SECRET}, allow_redirects=False
        ) as resp:
            assert resp.status == 403
        token = await csrf_of(browser_like, api.url + "/signin")
        async with browser_like.post(
            api.url + "/signin", data={"csrf": token, "secret": "guess"}
        ) as resp:
            assert resp.status == 401
            assert "not known" in await resp.text()
        async with browser_like.post(
            api.url + "/signin",
            data={"csrf": token, "secret": API_SECRET, "next": "//evil.example/"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303 and resp.headers["location"] == "/streams"
            cookie = resp.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie

        # Signed in, a post without this session's token changes nothing.
        for path in ACTIONS:
            for forged in ({}, {"csrf": token}, {"csrf": "0" * 64}):
                async with browser_like.post(api.url + path, data=forged) as resp:
                    assert resp.status == 403, (path, forged)
                    assert "reload the page" in await resp.text()
        assert (await api.ok("GET", f"/api/webhooks/{webhook['id']}"))["secret"] == webhook[
            "secret"
        ]
        assert len(await api.ok("GET", "/api/webhooks/list")) == 1

        # A tampered cookie is no session at all.
        [session] = [c.value for c in jar if c.key == "mediahooks_session"]
        jar.clear()
        tampered = session[:-2] + ("00" if not session.endswith("00") else "11")
        jar.update_cookies({"mediahooks_session": tampered}, URL(api.url))
        async with browser_like.get(api.url + "/webhooks", allow_redirects=False) as resp:
            assert resp.status == 303


async def csrf_of(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as resp:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', await resp.text())
    assert found
    return found.group(1)


async def signed_in_session(api: Api) -> tuple[aiohttp.ClientSession, str]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    token = await csrf_of(session, api.url + "/signin")
    async with session.post(
        api.url + "/signin", data={"csrf": token, "secret": API_SECRET}
    ) as resp:
        assert resp.status == 200
    return session, await csrf_of(session, api.url + "/webhooks")


async def test_bad_form_input_gets_a_message_and_never_a_500(api: Api, receiver: Receiver) -> None:
    webhook = await api.webhook(receiver.url + "/kept")
    w = f"/webhooks/{webhook['id']}"
    session, token = await signed_in_session(api)
    cases: list[tuple[str, dict[str, str], int, str]] = [
        ("/webhooks", {"url": "ftp://example.com/x"}, 400, "http"),
        ("/webhooks", {"url": ""}, 400, "url"),
        ("/webhooks", {"url": receiver.url + "/x", "filter": "(unclosed"}, 400, "regular"),
        ("/webhooks", {"url": "http://" + "a" * 3000}, 400, "url"),
        (w, {"url": receiver.url + "/y", "filter": "[z-a]"}, 400, "regular"),
        (
            w + "/test",
            {"hookType": "Bogus"},
            200,
            "Recordings, Thumbnail, ViewerConnection or Transcoder",
        ),
        (w + "/test", {"hookType": "Feeds"}, 200, "does not take Feeds hooks"),
        (w + "/recover", {"since": "yesterday"}, 200, "time to recover"),
        ("/webhooks/999/rotate", {}, 404, "does not exist"),
        ("/webhooks/abc/rotate", {}, 400, "does not understand"),
        (w + "/deliveries/999/retry", {}, 404, "not found"),
        ("/streams/clip", {"stream": "nowhere", "last": "30"}, 200, "No timelines"),
        ("/streams/clip", {"stream": "nowhere", "last": "1e400"}, 200, "Pick a range"),
        ("/streams/clip", {"stream": "x", "origin": "nan", "from": "0", "to": "5"}, 200, "Pick"),
        ("/streams/clip", {"stream": "x", "last": "-5"}, 200, "refused"),
        ("/assets/" + "0" * 32 + "/delete", {}, 404, "not found"),
        ("/assets/nothex/delete", {}, 400, "does not understand"),
    ]
    try:
        for path, fields, status, says in cases:
            async with session.post(api.url + path, data={"csrf": token, **fields}) as resp:
                text = await resp.text()
                assert resp.status == status, (path, fields, resp.status, text[-500:])
                assert says in text, (path, fields, text[-800:])
        async with session.post(
            api.url + "/webhooks", data={"csrf": token, "url": "x" * 70_000}
        ) as resp:
            assert resp.status == 403 and "larger" in await resp.text()
        for path in ["/assets?page=0", "/assets?status=bogus", w + "?before=-1", "/assets/x"]:
            async with session.get(api.url + path) as resp:
                assert resp.status in (400, 404), path
        assert len(await api.ok("GET", "/api/webhooks/list")) == 1
    finally:
        await session.close()


async def test_the_asset_list_filters_and_pages(api: Api) -> None:
    token = await publish_token(api, "hall")
    start = now_ms() - 14_000
    segments = synthetic.iter_segments(12, "ts", **SMALL)
    await publisher.publish(f"{api.url}/ingest/hall", token, segments, False, start_ms=start)
    for n in range(27):
        body = {
            "streamName": "hall",
            "startTime": iso(start),
            "stopTime": iso(start + 10_500),
            "name": f"take {n:02}",
        }
        await api.ok("POST", "/api/v3/media/assets", body)
    session, _ = await signed_in_session(api)

    async def names(query: str) -> tuple[list[str], bool]:
        async with session.get(f"{api.url}/assets?{query}") as resp:
            assert resp.status == 200
            text = await resp.text()
        return re.findall(r">(take \d\d)</a>", text), "Next →" in text

    try:
        first, more = await names("")
        assert first == [f"take {n:02}" for n in range(26, 1, -1)] and more
        assert await names("page=2") == (["take 01", "take 00"], False)
        assert (await names("order=oldest"))[0][0] == "take 00"
        assert await names("stream=elsewhere") == ([], False)
        assert await names("status=error") == ([], False)
        assert len((await names("type=clip&stream=hall"))[0]) == 25
    finally:
        await session.close()
