"""Media end to end: a synthetic stream pushed over HTTP, clips and recordings cut with PyAV,
their hooks at a real receiver, their files through signed links. Both databases; the tests
of files (clip, recording, expiry, delete) also both storages: the data directory and an S3
bucket (moto on loopback, or MEDIAHOOKS_TEST_S3_URL)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from mediahooks.clock import iso, now_ms
from mediahooks.media import hls, synthetic
from mediahooks.media.sweeper import forget_expired_segments
from mediahooks.storage import media_key
from support.media import SMALL, clip, events_of, fetch, hooks_for, media_of, push, put, token
from support.receiver import Receiver
from support.server import Api, ApiFactory
from support.waiting import eventually

BOTH_STORAGES = pytest.mark.parametrize("storage", ["local", "s3"])


def location_of(api: Api, asset_id: str) -> str:
    """Where the storage keeps an asset's MP4."""
    return api.service.storage.location(media_key(api.service.account_id, asset_id))


def no_media_files(api: Api) -> bool:
    """No clip, recording or poster on this node's disk (its timelines aside), in the media
    directory or the upload spool."""
    data = api.service.settings.data_dir
    return not [p for d in ("media", "spool") for p in (data / d).rglob("*") if p.is_file()]


@BOTH_STORAGES
@pytest.mark.parametrize("kind", ["ts", "fmp4"])
async def test_a_clip_from_a_pushed_stream_reaches_the_receiver_and_downloads(
    api: Api, receiver: Receiver, kind: str, storage: str
) -> None:
    await api.webhook(receiver.url + "/media")
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 40, kind)
    (asset,) = await clip(api, "cam", start + 10_000, start + 25_000)
    assert asset["status"] == "processing" and asset["type"] == "clip"
    assert await hooks_for(receiver, "/media", asset["id"], 2) == ["processing", "completed"]
    done = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    assert done["status"] == "complete"
    assert done["storage"]["type"] == "dolbyStorage"
    if storage == "s3":
        # In the bucket, its download sent there, and nothing of it on this node's disk.
        assert done["storage"]["path"] == location_of(api, asset["id"])
        async with (
            aiohttp.ClientSession() as s,
            s.get(done["download"]["downloadUrl"], allow_redirects=False) as resp,
        ):
            assert resp.status == 307
            assert not resp.headers["Location"].startswith(api.url)
        assert no_media_files(api)
    else:
        assert done["storage"]["path"] is None
    meta = done["metadata"]
    assert meta["format"] == "mp4" and meta["sizes"]["mp4"] > 0
    assert {t["type"] for t in meta["tracks"]} == {"video", "audio"}
    status, body, headers = await fetch(done["download"]["downloadUrl"])
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    duration, kinds = media_of(body)
    assert kinds == {"video", "audio"}
    # 15 s, plus at most one keyframe interval (1 s) of snap at the start.
    assert 14.5 <= duration <= 16.5
    assert len(body) == meta["sizes"]["mp4"]
    # Range requests serve a part of the file.
    status, part, _ = await fetch(done["download"]["downloadUrl"], {"Range": "bytes=0-99"})
    assert status == 206 and part == body[:100]
    completed = next(r.json for r in receiver.at("/media") if r.json["event"] == "completed")
    # Whole seconds in hooks: strictly typed receivers refuse 15.0 where they expect 15.
    assert completed["data"]["metadata"]["duration"] == round(duration)
    status, poster, headers = await fetch(done["download"]["posterUrl"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and poster[:2] == b"\xff\xd8"


@BOTH_STORAGES
async def test_a_recording_covers_its_broadcast(
    api_factory: ApiFactory, receiver: Receiver, storage: str
) -> None:
    api = await api_factory(idle_timeout=1)
    await api.webhook(receiver.url + "/rec")
    await api.ok(
        "POST",
        "/api/webhooks",
        {"url": receiver.url + "/feeds", "isFeedHooks": True, "isMediaHooks": False},
    )
    tok = await token(api, "stage", record=True)
    await push(api, tok, "stage", 15)

    async def recorded() -> bool:
        listed = await api.ok("GET", "/api/v3/media/assets?type=recording&status=complete")
        return len(listed) == 1

    await eventually(recorded, timeout=60)
    (rec,) = await api.ok("GET", "/api/v3/media/assets?type=recording&status=complete")
    assert rec["feed"]["tokenId"] == tok["id"]
    assert await hooks_for(receiver, "/rec", rec["id"], 2) == ["processing", "completed"]
    read = await api.ok("GET", f"/api/v3/media/assets/{rec['id']}")
    assert (read["storage"]["path"] is not None) == (storage == "s3")
    _, body, _ = await fetch(read["download"]["downloadUrl"])
    duration, _ = media_of(body)
    assert 14 <= duration <= 16
    feeds = [r.json["event"] for r in await receiver.wait_for(2, "/feeds")]
    assert feeds == ["started", "ended"]


async def test_a_range_without_a_timeline_is_refused(api: Api) -> None:
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 12)
    now = now_ms()
    for stream, lo, hi in [
        ("cam", now - 3_600_000, now - 3_500_000),  # before the stream existed
        ("elsewhere", start, start + 11_000),  # a stream never published
    ]:
        status, body = await api.call(
            "POST",
            "/api/v3/media/assets",
            {"streamName": stream, "startTime": iso(lo), "stopTime": iso(hi)},
        )
        assert status == 400
        assert body["data"]["message"].startswith("No timelines found matching clipping")


@pytest.mark.parametrize(
    ("offset_start", "offset_stop", "message"),
    [
        (-5_000, 0, "at least 10 s"),
        (-10 * 3_600_000, 0, "at most 8 h"),
        (60_000, 80_000, "in the past"),
        (-20_000, 60_000, "future"),
        (-10_000, -30_000, "after startTime"),
    ],
)
async def test_impossible_ranges_are_refused(
    api: Api, offset_start: int, offset_stop: int, message: str
) -> None:
    now = now_ms()
    status, body = await api.call(
        "POST",
        "/api/v3/media/assets",
        {
            "streamName": "cam",
            "startTime": iso(now + offset_start),
            "stopTime": iso(now + offset_stop),
        },
    )
    assert status == 400 and message in body["data"]["message"]


async def test_a_range_that_expires_while_its_clip_waits_errors(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    # No workers: the clip waits in `processing` while its timeline expires. The stream is
    # pushed dated a day back, so the publisher's clock must be believed that far.
    waiting = await api_factory(dispatch=False, max_clock_skew=2 * 86_400)
    await waiting.webhook(receiver.url + "/late")
    await waiting.ok("PUT", "/api/v3/account/media/expiration", {"timelines": {"days": 1}})
    tok = await token(waiting, "cam")
    day = 86_400
    start = await push(waiting, tok, "cam", 12, ago=day + 5)
    (asset,) = await clip(waiting, "cam", start, start + 11_000)
    refused = await waiting.ok("DELETE", f"/api/v3/media/assets?id={asset['id']}")
    assert refused["itemsDeleted"] == 0
    assert "only complete or error" in refused["errors"][0]["error"]
    await forget_expired_segments(waiting.service.db, now_ms())
    await api_factory()  # now the workers run
    assert await hooks_for(receiver, "/late", asset["id"], 2) == ["processing", "errored"]
    errored = next(r.json for r in receiver.at("/late") if r.json["event"] == "errored")
    assert "left the timeline" in errored["data"]["metadata"]["error"]
    read = await waiting.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    assert read["status"] == "error" and "left the timeline" in read["error"]


@BOTH_STORAGES
async def test_an_expired_asset_is_deleted_with_its_file(
    api: Api, receiver: Receiver, storage: str
) -> None:
    await api.webhook(receiver.url + "/expiry")
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 12)
    expires = now_ms() + 4_000
    (asset,) = await clip(api, "cam", start, start + 11_000, expiration=iso(expires))
    assert await hooks_for(receiver, "/expiry", asset["id"], 2) == ["processing", "completed"]
    read = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    link = read["download"]["downloadUrl"]
    assert (await fetch(link))[0] == 200
    events = await hooks_for(receiver, "/expiry", asset["id"], 3)
    assert events == ["processing", "completed", "deleted"]
    assert time.time() * 1000 >= expires
    status, _ = await api.call("GET", f"/api/v3/media/assets/{asset['id']}")
    assert status == 404
    status, body, _ = await fetch(link)
    # The service's own link says why; a presigned one gets the bucket's NoSuchKey.
    assert status == 404 and (b"gone" in body or storage == "s3")
    assert no_media_files(api)
    location = location_of(api, asset["id"])
    assert await api.service.storage.size(location) is None


@BOTH_STORAGES
async def test_delete_through_the_api_and_idempotent_requests(
    api: Api, receiver: Receiver, storage: str
) -> None:
    await api.webhook(receiver.url + "/del")
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 12)
    body = {"streamName": "cam", "startTime": iso(start), "stopTime": iso(start + 11_000)}
    key = {"Idempotency-Key": "clip-once"}
    first = await api.ok("POST", "/api/v3/media/assets", body, headers=key)
    again = await api.ok("POST", "/api/v3/media/assets", body, headers=dict(key))
    assert [a["id"] for a in again] == [a["id"] for a in first]
    asset_id = first[0]["id"]
    assert await hooks_for(receiver, "/del", asset_id, 2) == ["processing", "completed"]
    location = location_of(api, asset_id)
    assert await api.service.storage.size(location)
    done = await api.ok("DELETE", f"/api/v3/media/assets?id={asset_id}&id={'0' * 32}")
    assert done["itemsDeleted"] == 1
    assert done["errors"] == [{"id": "0" * 32, "error": "not found"}]
    assert await hooks_for(receiver, "/del", asset_id, 3) == ["processing", "completed", "deleted"]
    assert await api.service.storage.size(location) is None
    listed = await api.ok("GET", "/api/v3/media/assets?status=complete&status=error")
    assert asset_id not in [a["id"] for a in listed]
    assert len(events_of(receiver, "/del", asset_id)) == 3  # one clip, not two


async def test_bad_uploads_are_refused_and_hurt_no_one(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(max_segment_bytes=256 * 1024)
    await api.webhook(receiver.url + "/ok")
    good = await token(api, "cam")
    other = await token(api, "studio-*", clip=True)
    cases = [
        ("cam/index0.ts", b"\x00garbage" * 100, good["token"], 400, "not an MPEG-TS"),
        ("cam/index0.ts", b"", good["token"], 400, "empty"),
        ("cam/notes.txt", b"hello", good["token"], 400, "HLS playlist"),
        ("cam/index.m3u8", b"<html>nope</html>", good["token"], 400, "playlist"),
        ("cam/index0.ts", b"\x47" * 188, "wrong-token", 401, "unknown publish token"),
        ("cam/index0.ts", b"\x47" * 188, None, 401, "Missing publish token"),
        ("studio/index0.ts", b"\x47" * 188, good["token"], 403, "may not publish"),
        ("cam/big.ts", b"\x47" + b"\x00" * 300_000, good["token"], 413, "at most"),
    ]
    publishing = asyncio.create_task(push(api, good, "cam", 12))
    for path, data, tok, status, message in cases:
        got, body = await put(api, path, data, tok)
        assert got == status, (path, body)
        assert message in body["data"]["message"], body
    start = await publishing
    (asset,) = await clip(api, "cam", start, start + 11_000)
    assert await hooks_for(receiver, "/ok", asset["id"], 2) == ["processing", "completed"]
    assert other["id"] != good["id"]


async def test_a_restart_inside_the_range_gives_one_clip_per_timeline(
    api: Api, receiver: Receiver
) -> None:
    await api.webhook(receiver.url + "/restart")
    tok = await token(api, "cam")
    first = await push(api, tok, "cam", 12, ago=20)
    second = await push(api, tok, "cam", 12, ago=2)
    made = await clip(api, "cam", first + 2_000, second + 10_000)
    assert len(made) == 2
    for asset in made:
        assert await hooks_for(receiver, "/restart", asset["id"], 2) == [
            "processing",
            "completed",
        ]
    a, b = [await api.ok("GET", f"/api/v3/media/assets/{m['id']}") for m in made]
    assert a["stopTime"] <= b["startTime"]


async def test_a_cut_interrupted_by_a_crash_is_redone_and_completed_once(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    from mediahooks.store import assets as asset_store

    idle = await api_factory(dispatch=False)
    await idle.webhook(receiver.url + "/crash")
    tok = await token(idle, "cam")
    start = await push(idle, tok, "cam", 12)
    (asset,) = await clip(idle, "cam", start, start + 11_000)
    # A worker claims the asset and dies mid-cut: its lease is all that is left of it.
    async with idle.service.db.transaction() as conn:
        claimed = await asset_store.claim(conn, "worker-that-died", now_ms(), 1_500)
    assert claimed is not None and claimed.id == asset["id"]
    await api_factory()
    assert await hooks_for(receiver, "/crash", asset["id"], 2) == ["processing", "completed"]
    await asyncio.sleep(1)
    assert events_of(receiver, "/crash", asset["id"]) == ["processing", "completed"]


async def test_the_asset_list_filters_sorts_and_pages(api: Api) -> None:
    cam, studio = await token(api, "cam"), await token(api, "studio")
    cam_start = await push(api, cam, "cam", 12)
    studio_start = await push(api, studio, "studio", 12)
    made = [
        *await clip(api, "cam", cam_start, cam_start + 10_500, name="first"),
        *await clip(api, "cam", cam_start + 1_000, cam_start + 11_000, name="second"),
        # The studio's clip starts 2 s in, so it sorts after "second" however fast the pushes were.
        *await clip(api, "studio", studio_start + 2_000, studio_start + 12_000, name="third"),
    ]

    async def listed(query: str) -> list[str]:
        return [a["name"] for a in await api.ok("GET", f"/api/v3/media/assets?{query}")]

    async def all_complete() -> bool:
        return len(await listed("status=complete")) == 3

    await eventually(all_complete, timeout=60)
    assert await listed("streamName=cam") == ["first", "second"]
    assert await listed(f"tokenId={studio['id']}") == ["third"]
    assert await listed("name=second") == ["second"]
    assert (await listed("sort=streamName&desc=true"))[0] == "third"
    assert (await listed("sort=streamName"))[-1] == "third"
    assert await listed("") == ["first", "second", "third"]  # by startTime
    assert await listed("desc=true&limit=2") == ["third", "second"]
    assert await listed("desc=true&limit=2&page=2") == ["first"]
    assert await listed("type=recording") == []
    assert await listed("status=error") == []
    assert len(made) == 3


async def test_a_final_playlist_before_its_last_segment_ends_the_broadcast_after_it(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    # Publishers upload on several connections at once: the playlist with EXT-X-ENDLIST can be
    # taken before the last segment it lists. That segment still belongs to the broadcast.
    api = await api_factory(idle_timeout=30)
    await api.ok(
        "POST",
        "/api/webhooks",
        {"url": receiver.url + "/feeds", "isFeedHooks": True, "isMediaHooks": False},
    )
    tok = await token(api, "late", record=True)
    files = list(synthetic.iter_segments(3, "ts", **SMALL))
    start = now_ms() - 5000
    entries, at = [], start
    for f in files:
        entries.append(publisher_entry(f, at))
        at += round(f.duration * 1000)
    for f in files[:-1]:
        assert (await put(api, f"late/{f.name}", f.data, tok["token"]))[0] < 300
    final = hls.render_playlist(hls.Playlist(entries=entries, target_duration=2, ended=True))
    assert (await put(api, "late/index.m3u8", final.encode(), tok["token"]))[0] < 300
    assert (await put(api, f"late/{files[-1].name}", files[-1].data, tok["token"]))[0] < 300

    feeds = [r.json for r in await receiver.wait_for(2, "/feeds")]
    assert [f["event"] for f in feeds] == ["started", "ended"]
    assert feeds[0]["data"]["feedId"] == feeds[1]["data"]["feedId"]

    async def recorded() -> bool:
        return len(await api.ok("GET", "/api/v3/media/assets?status=complete")) == 1

    await eventually(recorded, timeout=60)
    (rec,) = await api.ok("GET", "/api/v3/media/assets?status=complete")
    assert rec["startTime"] == iso(start)
    # It covers the late segment, to within the playlist's rounding of durations.
    stop = datetime.fromisoformat(rec["stopTime"]).timestamp() * 1000
    assert abs(stop - at) < 50, (rec["stopTime"], iso(at))
    await asyncio.sleep(0.5)  # nothing more comes: no second broadcast was opened
    assert len(receiver.at("/feeds")) == 2


def publisher_entry(segment: Any, start: int) -> hls.Entry:
    return hls.Entry(segment.name, segment.duration, program_date_time=start)


async def test_deletes_racing_for_one_asset_remove_it_once(api: Api, receiver: Receiver) -> None:
    await api.webhook(receiver.url + "/race")
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 12)
    (asset,) = await clip(api, "cam", start, start + 11_000)
    assert await hooks_for(receiver, "/race", asset["id"], 2) == ["processing", "completed"]
    # Several DELETEs at once (and the sweeper, which finishes removals): none answers 500,
    # and the asset is removed once.
    answers = await asyncio.gather(
        *(api.call("DELETE", f"/api/v3/media/assets?id={asset['id']}") for _ in range(6))
    )
    assert all(status < 500 for status, _ in answers), answers
    assert any(status == 200 for status, _ in answers), answers
    assert await hooks_for(receiver, "/race", asset["id"], 3) == [
        "processing",
        "completed",
        "deleted",
    ]
    await asyncio.sleep(0.5)
    assert len(events_of(receiver, "/race", asset["id"])) == 3
