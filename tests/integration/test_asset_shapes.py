"""Media assets in the platform's documented shapes (its "How-to Get Media Assets" example and
its OpenAPI `MediaAssetResponseModel`/`RecordMetadata`), its filters as its clients send them,
deleting all of a type, and the v2 `record_files` routes its npm client still calls."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import av

from support.envelope import assert_fail
from support.media import clip, fetch, push, token
from support.receiver import Receiver
from support.server import Api, ApiFactory
from support.waiting import eventually

ASSET_FIELDS = {
    "id", "type", "feed", "startTime", "stopTime", "name", "storage", "status", "error",
    "created", "expiration", "removed", "metadata",
}  # fmt: skip


async def complete(api: Api, count: int, query: str = "status=complete") -> list[dict[str, Any]]:
    async def done() -> bool:
        return len(await api.ok("GET", f"/api/v3/media/assets?{query}")) >= count

    await eventually(done, timeout=60)
    listed: list[dict[str, Any]] = await api.ok("GET", f"/api/v3/media/assets?{query}")
    return listed


def assert_metadata(meta: dict[str, Any]) -> None:
    """`RecordMetadata`: `tracks` and `thumbnails` required, integers where it has integers."""
    assert {"format", "sizes", "duration", "tracks", "thumbnails"} <= set(meta)
    assert type(meta["duration"]) is int
    assert all(type(size) is int for size in meta["sizes"].values())
    for track in meta["tracks"]:
        for field in ("bitrate", "width", "height", "framerate", "channels", "samplerate"):
            assert field not in track or type(track[field]) is int, (field, track)


async def test_a_clip_reads_as_the_platform_documents_it(api: Api, receiver: Receiver) -> None:
    await api.webhook(receiver.url + "/media")
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 14)
    (made,) = await clip(api, "cam", start + 1_000, start + 12_000, name="shape")
    assert set(made) >= ASSET_FIELDS
    assert made["storage"] == {"type": "dolbyStorage", "path": None}
    assert made["metadata"]["thumbnails"] == [] and made["metadata"]["tracks"] == []

    (listed,) = await complete(api, 1)
    read = await api.ok("GET", f"/api/v3/media/assets/{made['id']}")
    assert ASSET_FIELDS | {"download"} <= set(read)
    # List items carry their download link as the read does.
    assert set(listed["download"]) >= {"downloadUrl", "downloadExpiresOn"}
    datetime.fromisoformat(listed["download"]["downloadExpiresOn"])
    status, body, _ = await fetch(listed["download"]["downloadUrl"])
    assert status == 200

    meta = read["metadata"]
    assert_metadata(meta)
    assert meta["format"] == "mp4" and 10 <= meta["duration"] <= 12
    assert meta["sizes"]["mp4"] == len(body) and meta["sizes"]["thumbnails"] > 0
    (video,) = [t for t in meta["tracks"] if t["type"] == "video"]
    assert (video["width"], video["height"], video["framerate"]) == (320, 180, 30)
    # Its thumbnails: signed links to JPEGs of stills along the clip, at its size; the first is
    # its poster.
    assert len(meta["thumbnails"]) == 3 and meta["thumbnails"][0] == read["download"]["posterUrl"]
    sizes = 0
    for still in meta["thumbnails"]:
        status, jpeg, headers = await fetch(still)
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        with av.open(io.BytesIO(jpeg), "r") as image:
            frame = next(image.decode(video=0))
        assert (frame.width, frame.height) == (320, 180)
        sizes += len(jpeg)
        status, _, _ = await fetch(still.replace("sig=", "sig=0"))
        assert status in (400, 403)
    assert sizes == meta["sizes"]["thumbnails"]

    # The hook body: integers, never `11.0`.
    completed = next(r for r in receiver.at("/media") if r.json["event"] == "completed")
    hook_meta = completed.json["data"]["metadata"]
    assert_metadata(hook_meta)
    assert b'"duration":' + str(meta["duration"]).encode() + b"," in completed.body


async def test_filters_take_timelines_deleted_assets_and_comma_joined_arrays(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(idle_timeout=1)
    cam, rec = await token(api, "cam"), await token(api, "stage", record=True)
    cam_start = await push(api, cam, "cam", 12)
    await push(api, rec, "stage", 11)
    (made,) = await clip(api, "cam", cam_start + 500, cam_start + 11_000)
    await complete(api, 2)

    async def ids(query: str) -> list[str]:
        return sorted(a["id"] for a in await api.ok("GET", f"/api/v3/media/assets?{query}"))

    both = await ids("type=clip&type=recording")
    assert len(both) == 2
    assert await ids("type=clip,recording") == both == await ids("")
    assert await ids("type=clip,recording&status=processing,complete") == both
    assert await ids("type=clip") == [made["id"]]

    timelines = await api.ok("GET", "/api/v3/media/assets?type=timeline&sort=streamName")
    assert [(t["type"], t["feed"]["streamName"]) for t in timelines] == [
        ("timeline", "cam"),
        ("timeline", "stage"),
    ]
    for timeline in timelines:
        assert timeline["status"] == "complete"  # ended, with its segments still there
        start, stop = (datetime.fromisoformat(timeline[k]) for k in ("startTime", "stopTime"))
        expires = datetime.fromisoformat(timeline["expiration"])
        assert start < stop < expires
        assert (expires - stop).total_seconds() <= 86_400 + 5  # the default rule: one day
    assert len(await ids("type=timeline,clip,recording")) == 4

    # A rule changes when timelines expire.
    await api.ok("PUT", "/api/v3/account/media/expiration", {"timelines": {"days": 3}})
    (cam_timeline, _) = await api.ok("GET", "/api/v3/media/assets?type=timeline&sort=streamName")
    left = datetime.fromisoformat(cam_timeline["expiration"]) - datetime.fromisoformat(
        cam_timeline["stopTime"]
    )
    assert 2 * 86_400 < left.total_seconds() <= 3 * 86_400 + 5

    assert await api.ok("DELETE", f"/api/v3/media/assets?id={made['id']}") == {
        "itemsDeleted": 1,
        "errors": [],
    }

    async def deleted() -> bool:
        return await ids("status=deleted") == [made["id"]]

    await eventually(deleted)
    (gone,) = await api.ok("GET", "/api/v3/media/assets?status=deleted")
    assert gone["removed"] is not None and "download" not in gone
    assert await ids("type=clip") == []

    for query, field in (
        ("type=clip,bogus", "type"),
        ("type=clip,", "type"),
        ("status=complete,finished", "status"),
        ("status=", "status"),
    ):
        status, answer = await api.call("GET", f"/api/v3/media/assets?{query}")
        assert_fail(status, answer, 400)
        # The field, or the item of it at fault (`type.1`).
        assert any(k.split(".")[0] == field for k in answer["data"]["errors"]), (query, answer)


async def test_delete_all_of_a_type(api_factory: ApiFactory, receiver: Receiver) -> None:
    api = await api_factory(idle_timeout=1)
    await api.webhook(receiver.url + "/media")
    cam, rec = await token(api, "cam"), await token(api, "stage", record=True)
    start = await push(api, cam, "cam", 12)
    await push(api, rec, "stage", 11)
    clips = [
        *await clip(api, "cam", start + 200, start + 10_500),
        *await clip(api, "cam", start + 1_000, start + 11_500),
    ]
    await complete(api, 3)

    answer = await api.ok("DELETE", "/api/v3/media/assets/all/clip")
    assert answer == {"itemsDeleted": 2, "errors": []}

    async def clips_deleted() -> bool:
        done = {
            r.json["data"]["mediaAssetId"]
            for r in receiver.at("/media")
            if r.json["event"] == "deleted"
        }
        return done == {c["id"] for c in clips}

    await eventually(clips_deleted)
    assert [a["type"] for a in await api.ok("GET", "/api/v3/media/assets")] == ["recording"]

    answer = await api.ok("DELETE", "/api/v3/media/assets/all/timeline")
    assert answer == {"itemsDeleted": 2, "errors": []}
    timelines = await api.ok("GET", "/api/v3/media/assets?type=timeline&status=deleted")
    assert sorted(t["feed"]["streamName"] for t in timelines) == ["cam", "stage"]
    # Their segments are gone: no clip can be cut from them any more.
    status, body = await api.call(
        "POST",
        "/api/v3/media/assets",
        {"streamName": "cam", "startTime": clips[0]["startTime"], "stopTime": clips[0]["stopTime"]},
    )
    assert "No timelines" in assert_fail(status, body, 400)

    assert (await api.ok("DELETE", "/api/v3/media/assets/all/recording"))["itemsDeleted"] == 1
    for bad in ("clips", "storageValidation", "all"):
        status, body = await api.call("DELETE", f"/api/v3/media/assets/all/{bad}")
        assert "type" in body["data"]["errors"] and status == 400, body


async def test_the_v2_record_files_routes(api_factory: ApiFactory) -> None:
    api = await api_factory(idle_timeout=1)
    cam, rec = await token(api, "cam"), await token(api, "stage", record=True)
    start = await push(api, cam, "cam", 12)
    await push(api, rec, "stage", 11)
    (made,) = await clip(api, "cam", start + 500, start + 11_000)
    listed = await complete(api, 2)
    recording = next(a for a in listed if a["type"] == "recording")

    read = await api.ok("GET", f"/api/v2/record_files/{recording['id']}")
    assert read["id"] == recording["id"]
    assert (read["status"], read["itemType"]) == ("Complete", "FullRecording")
    assert (read["tokenId"], read["streamName"]) == (rec["id"], "stage")
    assert datetime.fromisoformat(read["recordedOn"]) < datetime.fromisoformat(read["stoppedOn"])
    assert read["removedOn"] is None and read["error"] is None
    assert read["storage"] == {"storageType": "DolbyStorage", "storagePath": None}
    assert_metadata(read["metadata"])
    status, _, _ = await fetch(read["download"]["downloadUrl"])
    assert status == 200
    assert (await api.ok("GET", f"/api/v2/record_files/{made['id']}"))["itemType"] == "Clip"

    unknown = "0" * 32
    answer = await api.ok(
        "POST", "/api/v2/record_files/delete", {"mediaAssetIds": [made["id"], unknown]}
    )
    assert answer == {"errors": [{"mediaAssetId": unknown, "error": "not found"}]}
    assert (await api.ok("GET", f"/api/v2/record_files/{made['id']}"))["status"] == "Deleted"

    assert await api.ok("DELETE", f"/api/v2/record_files/{recording['id']}") is True
    status, body = await api.call("DELETE", f"/api/v2/record_files/{recording['id']}")
    assert recording["id"] in assert_fail(status, body, 404)
    status, body = await api.call("GET", f"/api/v2/record_files/{unknown}")
    assert unknown in assert_fail(status, body, 404)
    for body_sent, field in (
        ({}, "mediaAssetIds"),
        ({"mediaAssetIds": []}, "mediaAssetIds"),
        ({"mediaAssetIds": ["not-hex"]}, "mediaAssetIds"),
    ):
        status, body = await api.call("POST", "/api/v2/record_files/delete", body_sent)
        assert_fail(status, body, 400)
        assert any(k.startswith(field) for k in body["data"]["errors"]), body


async def test_the_expiration_rules_in_force_include_the_defaults(api: Api) -> None:
    # Timelines expire after a day unless a rule says otherwise; recordings and clips never.
    assert await api.ok("GET", "/api/v3/account/media/expiration") == {"timelines": {"days": 1}}
    rules = {"recordings": {"days": 30}, "clips": {"days": 7}}
    in_force = {"timelines": {"days": 1}, **rules}
    assert await api.ok("PUT", "/api/v3/account/media/expiration", rules) == in_force
    assert await api.ok("GET", "/api/v3/account/media/expiration") == in_force
    assert await api.ok("PUT", "/api/v3/account/media/expiration", {"timelines": {"days": 9}}) == {
        "timelines": {"days": 9}
    }
    assert await api.ok("PUT", "/api/v3/account/media/expiration", {}) == {"timelines": {"days": 1}}
