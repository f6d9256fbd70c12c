"""Watching: HLS of a live stream and of past ranges from the stored segments, decoded by the
ffmpeg command line; who may watch (subscribe tokens, signed links, public accounts); CORS;
clips' instant playback links; viewer hooks and their timing. Both databases."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest

from mediahooks.clock import iso, now_ms
from mediahooks.media import hls, publisher, synthetic
from support.media import SMALL, clip, fetch, link, push, token
from support.receiver import Receiver
from support.server import Api, ApiFactory
from support.waiting import eventually

FFMPEG_DECODE = ["ffmpeg", "-v", "error", "-nostdin", "-t", "2", "-f", "null", "-"]


async def live(api: Api, tok: dict[str, Any], stream: str, history: int, seconds: int) -> Any:
    """Publish in the background, ``history`` seconds at once and then at the real pace."""
    made = synthetic.iter_segments(seconds, "ts", **SMALL)
    segments = await asyncio.to_thread(list, made)
    return asyncio.create_task(
        publisher.publish(
            f"{api.url}/ingest/{stream}",
            tok["token"],
            segments,
            realtime=True,
            start_ms=now_ms() - history * 1000,
        )
    )


async def stop(task: Any) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def playlist(url: str, headers: dict[str, str] | None = None) -> hls.Playlist:
    status, body, _ = await fetch(url, headers)
    assert status == 200, body
    return hls.parse_playlist(body.decode())


async def decode(url: str, *extra: str) -> None:
    """The Debian ffmpeg command line decodes two seconds from ``url``."""
    proc = await asyncio.create_subprocess_exec(
        *FFMPEG_DECODE[:4], "-i", url, *extra, *FFMPEG_DECODE[4:], stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()


async def test_the_live_playlist_follows_the_edge_ends_and_ffmpeg_decodes_it(api: Api) -> None:
    tok = await token(api, "cam")
    publishing = await live(api, tok, "cam", history=8, seconds=30)
    try:
        url = await link(api, "cam")

        async def edge() -> bool:
            status, body, _ = await fetch(url)
            return status == 200 and len(hls.parse_playlist(body.decode()).entries) == 6

        await eventually(edge, timeout=30)
        first = await playlist(url)
        assert not first.ended and first.map_uri is None
        assert all(e.program_date_time for e in first.entries)
        await decode(url)
        await asyncio.sleep(2.2)
        later = await playlist(url)
        assert later.media_sequence >= first.media_sequence + 1
        # Each segment keeps its number: the one at the new sequence number is the same file.
        moved = later.media_sequence - first.media_sequence
        if moved < len(first.entries):
            assert first.entries[moved].uri == later.entries[0].uri
        status, body, headers = await fetch(urljoin(url, later.entries[-1].uri))
        assert status == 200 and headers["Content-Type"] == "video/mp2t" and body[0] == 0x47
    finally:
        await stop(publishing)
    ended = await playlist(url)
    assert ended.ended


@pytest.mark.parametrize("kind", ["ts", "fmp4"])
async def test_a_range_playlist_lasts_the_range_and_a_clip_plays_at_once(
    api: Api, receiver: Receiver, kind: str
) -> None:
    await api.webhook(receiver.url + "/media")
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 20, kind)
    lo, hi = start + 3_300, start + 14_700
    url = await link(api, "cam", startTime=iso(lo), stopTime=iso(hi))
    got = await playlist(url)
    assert got.ended and (got.map_uri is not None) == (kind == "fmp4")
    total = sum(e.duration for e in got.entries)
    assert abs(total - (hi - lo) / 1000) <= 1.0  # the synthetic stream has a keyframe a second
    dates = [e.program_date_time for e in got.entries if e.program_date_time is not None]
    assert len(dates) == len(got.entries) and dates == sorted(dates)
    assert abs(dates[0] - lo) <= 1000
    for uri in [got.map_uri] if got.map_uri else []:
        status, body, headers = await fetch(urljoin(url, uri))
        assert status == 200 and headers["Content-Type"] == "video/mp4" and b"ftyp" in body[:16]
    await decode(url)

    # A clip's answer carries its playback link, and so does its `processing` hook.
    (asset,) = await clip(api, "cam", start + 2_000, start + 15_000)
    assert asset["status"] == "processing"
    clip_list = await playlist(asset["playbackUrl"])
    assert clip_list.ended and abs(sum(e.duration for e in clip_list.entries) - 13) <= 1
    await receiver.wait_for(1, "/media")
    hook = receiver.at("/media")[0].json
    assert hook["event"] == "processing"
    assert (
        hook["data"]["metadata"]["playbackUrl"].split("&expires=")[0]
        == (asset["playbackUrl"].split("&expires=")[0])
    )
    # The link is for the clip's range only.
    wider = asset["playbackUrl"].replace(f"start={start + 2_000}", f"start={start}")
    status, body, _ = await fetch(wider)
    assert status == 403 and "only the range" in body.decode()


async def test_protected_streams_want_a_subscribe_token_or_a_signed_link(api: Api) -> None:
    protected = await api.ok(
        "POST",
        "/api/publish_token",
        {"label": "p", "streams": [{"streamName": "vip"}], "clip": True,
         "subscribeRequiresAuth": True},
    )  # fmt: skip
    assert protected["subscribeRequiresAuth"] is True
    open_tok = await token(api, "open")
    await push(api, protected, "vip", 12)
    start = await push(api, open_tok, "open", 12)
    account = (await link(api, "vip")).split("/play/")[1].split("/")[0]
    base = f"{api.url}/play/{account}"
    viewer = await api.ok(
        "POST", "/api/subscribe_token", {"label": "v", "streams": [{"streamName": "vip"}]}
    )
    other = await api.ok(
        "POST", "/api/subscribe_token", {"label": "o", "streams": [{"streamName": "open"}]}
    )
    assert len(viewer["token"]) == 64 and viewer["isActive"] is True

    live_url = f"{base}/vip/live.m3u8"
    for url, status, words in [
        (live_url, 401, "requires a subscribe token"),
        (live_url + "?token=" + "0" * 64, 403, "Unknown or inactive"),
        (live_url + "?token=" + other["token"], 403, "does not allow the stream"),
        (f"{base}/open/live.m3u8", 401, "not public"),
    ]:
        got, body, headers = await fetch(url)
        assert got == status and words in body.decode(), (url, body)
        assert headers["Access-Control-Allow-Origin"] == "*"
    # The right token, in the query or as a header; the segments it lists need nothing more.
    for url, headers in [
        (live_url + "?token=" + viewer["token"], None),
        (live_url, {"Authorization": f"Bearer {viewer['token']}"}),
    ]:
        got_list = await playlist(url, headers)
        status, _, _ = await fetch(urljoin(live_url, got_list.entries[0].uri))
        assert status == 200
    assert (await playlist(await link(api, "vip"))).ended

    # A public account shows unprotected streams to anyone, never protected ones.
    assert await api.ok("GET", "/api/v3/account/playback") == {"public": False}
    await api.ok("PUT", "/api/v3/account/playback", {"public": True})
    ranged = f"{base}/open/range.m3u8?start={iso(start + 1000)}&duration=5"
    assert len((await playlist(ranged)).entries) >= 4
    assert (await fetch(live_url))[0] == 401

    # Deactivated token, tampered and expired links.
    await api.ok("PUT", f"/api/subscribe_token/{viewer['id']}", {"isActive": False})
    assert (await fetch(live_url + "?token=" + viewer["token"]))[0] == 403
    signed = await link(api, "vip")
    tampered = signed[:-1] + ("0" if signed[-1] != "0" else "1")
    status, body, _ = await fetch(tampered)
    assert status == 403 and "not valid" in body.decode()
    short = await link(api, "vip", ttl=1)
    assert (await fetch(short))[0] == 200
    await asyncio.sleep(1.2)
    status, body, _ = await fetch(short)
    assert status == 403 and "expired" in body.decode()


async def test_cors_preflight_and_bad_requests_get_actionable_answers(api: Api) -> None:
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 12)
    url = await link(api, "cam")
    async with aiohttp.ClientSession() as s:
        preflight = {"Origin": "https://player.example", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"}  # fmt: skip
        async with s.options(url.split("?")[0], headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    range_url = url.replace("live.m3u8", "range.m3u8")
    for query, words in [
        ("", "start is required"),
        (f"&start={start}", "give stop"),
        ("&start=yesterday&duration=3", "ISO 8601"),
        (f"&start={start + 5000}&stop={start}", "after start"),
        (f"&start={start}&duration=x", "number of seconds"),
        (f"&start={start}&stop={start + 1000}&duration=3", "not both"),
    ]:
        status, body, _ = await fetch(range_url + query)
        assert status == 400 and words in body.decode(), (query, body)
    status, body, _ = await fetch(range_url + f"&start={start - 600_000}&duration=60")
    assert status == 404 and "No timeline" in body.decode()
    segment = url.split("live.m3u8")[0] + "1/nothing.ts"
    status, body, _ = await fetch(segment)
    assert status == 401 and "signed" in body.decode()
    status, body, _ = await fetch(url.replace("/cam/", "/cam2/"))
    assert status == 403 and "not valid" in body.decode()  # a link signed for another stream


async def test_viewer_hooks_fire_in_order_with_their_delays(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(viewer_timeout=1, no_viewers_delay=1.5, viewer_attempt_interval=3)
    await api.webhook(receiver.url + "/viewers", isMediaHooks=False, isViewerConnectionHooks=True)
    url = await link(api, "stage")
    for _ in range(4):  # not live: one ViewerAttempt however often a player asks
        status, body, _ = await fetch(url)
        assert status == 404 and "has not started" in body.decode()
    await receiver.wait_for(1, "/viewers")
    tok = await token(api, "stage")
    publishing = await live(api, tok, "stage", history=6, seconds=40)
    try:
        watched_until = 0.0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # a player: playlist and its newest segment
            status, body, _ = await fetch(url)
            if status == 200:
                entries = hls.parse_playlist(body.decode()).entries
                assert "sid=" in entries[-1].uri
                assert (await fetch(urljoin(url, entries[-1].uri)))[0] == 200
                watched_until = time.monotonic()
            await asyncio.sleep(0.3)

        async def left() -> bool:
            return any(r.json["event"] == "NoActiveViewers" for r in receiver.at("/viewers"))

        await eventually(left, timeout=10)
    finally:
        await stop(publishing)
    hooks = receiver.at("/viewers")
    events = [h.json["event"] for h in hooks]
    # Attempts while the stream was not live (the player also asked before the publisher's
    # first segments were in), then one first viewer and, after the delay, nobody.
    assert events[-2:] == ["FirstViewerConnection", "NoActiveViewers"], events
    attempts = [h.json["timestamp"] for h in hooks if h.json["event"] == "ViewerAttempt"]
    assert len(attempts) == len(events) - 2 >= 1
    assert all(b - a >= 3000 for a, b in itertools.pairwise(attempts)), attempts
    data = hooks[0].json["data"]
    account = url.split("/play/")[1].split("/")[0]
    assert data == {"name": "stage", "accountId": account, "streamId": f"{account}/stage"}
    assert all(h.json["type"] == "viewerConnection" for h in hooks)
    assert "X-Millicast-Signature" in hooks[0].headers
    # Gone after 1 s without a fetch, then 1.5 s without anyone: NoActiveViewers.
    gone = hooks[-1].at - watched_until
    assert 2.4 <= gone <= 4.5, gone
