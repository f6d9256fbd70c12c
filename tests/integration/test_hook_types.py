"""The platform's six webhook types: test events of each, `recordings` hooks of a real
recording, and `thumbnail` hooks (a signed JPEG) of a stream that ffmpeg publishes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
from pathlib import Path
from typing import Any

import av
import pytest

from mediahooks.receiver import verify
from mediahooks.receiver.models import parse as parse_hook
from support.envelope import assert_fail
from support.media import push, token
from support.mediakit import h264_aac_file
from support.receiver import Received, Receiver
from support.server import Api, ApiFactory
from support.signatures import assert_signed
from support.waiting import eventually

# The platform's `WebhookType` path names, the hook `type` each sends and its webhook flag.
TYPES = {
    "Media": ("media", "isMediaHooks"),
    "Feeds": ("feeds", "isFeedHooks"),
    "Recordings": ("recordings", "isRecordingHooks"),
    "Thumbnail": ("thumbnail", "isThumbnailHooks"),
    "ViewerConnection": ("viewerConnection", "isViewerConnectionHooks"),
    "Transcoder": ("transcoder", "isTranscoderHooks"),
}
FLAGS = [flag for _, flag in TYPES.values()]
# The `data` fields of each JSON type, from the platform's webhook pages (reference §7).
DATA_FIELDS = {
    "media": {"mediaAssetId", "tokenId", "streamName", "streamId", "startTime", "type"},
    "feeds": {"feedId", "accountId", "name", "streamId", "active"},
    "recordings": {"recordFileId", "tokenId", "streamName", "recordedOn"},
    "viewerConnection": {"name", "accountId", "streamId"},
    "transcoder": {"transcoderId", "transcoderName", "cluster", "createdOn", "status"},
}
THUMBNAIL_HEADERS = (
    "X-Millicast-Timestamp",
    "X-Millicast-Feed-Id",
    "X-Millicast-Stream-Id",
    "X-Millicast-Token-Id",
)


def platform_signature_ok(got: Received, secret: str) -> bool:
    """What the platform's sample receivers do: HMAC-SHA1 of the raw body, keyed by the
    base64-decoded secret."""
    expected = hmac.new(base64.b64decode(secret), got.body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(got.headers.get("X-Millicast-Signature", ""), "sha1=" + expected)


def picture(jpeg: bytes) -> tuple[int, int]:
    """Decode a JPEG with PyAV; its size."""
    with av.open(io.BytesIO(jpeg), "r") as image:
        frame = next(image.decode(video=0))
    return frame.width, frame.height


def assert_thumbnail(got: Received, secret: str) -> tuple[int, int]:
    assert got.headers["Content-Type"] == "image/jpeg"
    assert got.body[:2] == b"\xff\xd8" and got.body[-2:] == b"\xff\xd9"
    for name in THUMBNAIL_HEADERS:
        assert got.headers.get(name), (name, got.headers)
    assert len(got.headers["X-Millicast-Timestamp"]) == 13  # epoch ms
    assert platform_signature_ok(got, secret)
    return picture(got.body)


async def test_test_events_of_every_type_answer_true_and_reach_their_subscribers_only(
    api: Api, receiver: Receiver
) -> None:
    own = {
        name: await api.webhook(
            f"{receiver.url}/{wire}", **{**dict.fromkeys(FLAGS, False), flag: True}
        )
        for name, (wire, flag) in TYPES.items()
    }
    every = await api.webhook(receiver.url + "/every", **dict.fromkeys(FLAGS, True))
    none = await api.webhook(receiver.url + "/none", **dict.fromkeys(FLAGS, False))

    for name, (wire, _) in TYPES.items():
        sent = await api.send_test(name)  # asserts the answer is `true`, as on the platform
        assert sent["webhookIds"] == [own[name]["id"], every["id"]], name
        (got,) = await receiver.wait_for(1, f"/{wire}")
        if wire == "thumbnail":
            assert assert_thumbnail(got, own[name]["secret"]) == (640, 360)
            assert got.headers["X-Millicast-Stream-Id"].endswith("/mediahooks-test")
            # Standard Webhooks too (its off-the-shelf verifier insists on a JSON body).
            verified = verify(got.body, got.headers, own[name]["secret"])
            assert verified.webhook_id == sent["messageId"]
            continue
        assert got.headers["Content-Type"] == "application/json"
        body = got.json
        assert (body["type"], list(body)) == (wire, ["type", "event", "timestamp", "data"])
        assert DATA_FIELDS[wire] <= set(body["data"]), body
        assert parse_hook(got.body).type == wire
        assert_signed(got, own[name]["secret"], sent["messageId"])

    every_got = await receiver.wait_for(len(TYPES), "/every")
    kinds = {r.headers["Content-Type"].split(";")[0] for r in every_got}
    assert kinds == {"application/json", "image/jpeg"}
    assert sorted(r.json["type"] for r in every_got if r.body[:1] == b"{") == sorted(
        wire for wire, _ in TYPES.values() if wire != "thumbnail"
    )
    # Lower case and the singular `recording` are the same types.
    assert (await api.send_test("recording"))["webhookIds"] == [
        own["Recordings"]["id"],
        every["id"],
    ]
    assert (await api.send_test("viewerconnection"))["webhookIds"][0] == own["ViewerConnection"][
        "id"
    ]
    await receiver.wait_for(len(TYPES) + 2, "/every")
    assert receiver.at("/none") == []
    assert await api.ok("GET", f"/api/webhooks/{none['id']}/deliveries") == []


async def test_a_thumbnail_delivery_shows_what_was_sent(api: Api, receiver: Receiver) -> None:
    hook = await api.webhook(receiver.url + "/t", isMediaHooks=False, isThumbnailHooks=True)
    sent = await api.send_test("Thumbnail")
    (got,) = await receiver.wait_for(1, "/t")
    (listed,) = await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries")
    assert (listed["hookType"], listed["messageId"]) == ("thumbnail", sent["messageId"])

    async def succeeded() -> bool:
        shown = await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries/{listed['id']}")
        return bool(shown["status"] == "succeeded")

    await eventually(succeeded)
    shown = await api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries/{listed['id']}")
    assert shown["payload"]["contentType"] == "image/jpeg"
    assert shown["payload"]["size"] == len(got.body)
    (attempt,) = shown["attemptLog"]
    assert attempt["requestHeaders"]["Content-Type"] == "image/jpeg"
    assert (
        attempt["requestHeaders"]["X-Millicast-Stream-Id"] == got.headers["X-Millicast-Stream-Id"]
    )


async def test_a_recording_sends_recordings_hooks_beside_its_media_hooks(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(idle_timeout=1)
    both = await api.webhook(receiver.url + "/both", isRecordingHooks=True)
    old = await api.webhook(receiver.url + "/old", isMediaHooks=False, isRecordingHooks=True)
    tok = await token(api, "stage", record=True)
    await push(api, tok, "stage", 12)

    def recordings(path: str) -> list[str]:
        return [r.json["event"] for r in receiver.at(path) if r.json["type"] == "recordings"]

    async def completed() -> bool:
        return recordings("/old") == ["started", "completed"]

    await eventually(completed, timeout=60)
    started, done = (r.json for r in receiver.at("/old"))
    rec_id = started["data"]["recordFileId"]
    assert started["data"] == {
        "recordFileId": rec_id,
        "tokenId": tok["id"],
        "streamName": "stage",
        "recordedOn": started["data"]["recordedOn"],
    }
    meta = done["data"]["metadata"]
    assert done["data"]["recordFileId"] == rec_id and done["data"]["tokenId"] == tok["id"]
    # Integers where the platform's schema has integers: a typed receiver never sees 12.0.
    assert type(meta["duration"]) is int and 11 <= meta["duration"] <= 13
    assert all(type(t["bitrate"]) is int for t in meta["tracks"])
    (video,) = [t for t in meta["tracks"] if t["type"] == "video"]
    assert (video["width"], video["height"], video["framerate"]) == (320, 180, 30)
    assert type(video["framerate"]) is int
    assert meta["sizes"]["mp4"] > 0 and meta["thumbnails"] == []

    # One ordering key: a webhook taking both gets each `recordings` hook after its `media` one.
    await eventually(lambda: _count(receiver, "/both", 4), timeout=30)
    assert [(r.json["type"], r.json["event"]) for r in receiver.at("/both")] == [
        ("media", "processing"),
        ("recordings", "started"),
        ("media", "completed"),
        ("recordings", "completed"),
    ]
    for got in receiver.at("/old"):
        assert platform_signature_ok(got, old["secret"])

    # Deleted through the v2 route the platform's npm client calls.
    assert await api.ok("DELETE", f"/api/v2/record_files/{rec_id}") is True

    async def deleted() -> bool:
        return recordings("/old")[-1:] == ["deleted"]

    await eventually(deleted)
    gone = receiver.at("/old")[-1].json["data"]
    assert gone["recordFileId"] == rec_id and gone["removedOn"] >= gone["recordedOn"]
    await eventually(lambda: _count(receiver, "/both", 6))
    assert [r.json["event"] for r in receiver.at("/both")][-2:] == ["deleted", "deleted"]
    assert both["id"] != old["id"]


async def _count(receiver: Receiver, path: str, count: int) -> bool:
    return len(receiver.at(path)) >= count


# --- live thumbnails ---------------------------------------------------------------------------

SECONDS = 10


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An H.264/AAC file of 424x240 (a size of its own: no rescaling shows)."""
    return h264_aac_file(tmp_path_factory.mktemp("source") / "input.mp4", SECONDS, "424x240")


async def test_thumbnails_arrive_signed_while_ffmpeg_publishes_and_stop_when_it_ends(
    api_factory: ApiFactory, receiver: Receiver, source: Path
) -> None:
    # Retries far apart: a failing endpoint's older pictures are superseded, not retried.
    api = await api_factory(thumbnail_interval=1, idle_timeout=1, retry_schedule="60,60")
    thumbs = await api.webhook(receiver.url + "/thumbs", isMediaHooks=False, isThumbnailHooks=True)
    await api.webhook(receiver.url + "/media-only")
    failing = receiver.on("/failing", _answer(503))
    down = await api.webhook(failing, isMediaHooks=False, isThumbnailHooks=True)
    await api.webhook(receiver.url + "/feeds", isMediaHooks=False, isFeedHooks=True)
    body = {"label": "cam", "streams": [{"streamName": "live"}], "enableThumbnails": True}
    tok = await api.ok("POST", "/api/publish_token", body)
    assert tok["enableThumbnails"] is True
    plain = await token(api, "plain")  # no thumbnails for its streams

    ffmpeg = await asyncio.create_subprocess_exec(
        "ffmpeg", "-loglevel", "error", "-re", "-i", str(source),
        "-c:v", "libx264", "-g", "30", "-c:a", "aac",
        "-f", "hls", "-hls_time", "1", "-method", "PUT",
        "-headers", f"Authorization: Bearer {tok['token']}\r\n",
        f"{api.url}/ingest/live/index.m3u8",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await push(api, plain, "plain", 4)
    try:
        got = await receiver.wait_for(3, "/thumbs", timeout=SECONDS + 20)
        # On demand too, at most 6 a minute per stream.
        answers = [
            await api.call("POST", "/api/thumbnails", {"streamName": "live"}) for _ in range(7)
        ]
        assert [status for status, _ in answers] == [200] * 6 + [429]
        assert all(a["data"] is True for _, a in answers[:6])
        assert "6 thumbnails a minute" in assert_fail(*answers[6], 429)
        status, answer = await api.call(
            "POST", "/api/thumbnails", {"streamName": "live", "tokenId": tok["id"] + 1000}
        )
        assert "tokenId" in answer["data"]["errors"] and status == 400
    finally:
        _, err = await asyncio.wait_for(ffmpeg.communicate(), SECONDS + 30)
    assert ffmpeg.returncode == 0, err.decode()

    def feeds(event: str) -> set[str]:
        return {
            r.json["data"]["feedId"]
            for r in receiver.at("/feeds")
            if r.json["data"]["name"] == "live" and r.json["event"] == event
        }

    # Every broadcast of the stream ended (ffmpeg has exited, so every upload was answered; a
    # segment uploaded after the final playlist may have opened a second, short broadcast).
    async def ended() -> bool:
        return bool(feeds("started")) and feeds("started") <= feeds("ended")

    await eventually(ended, timeout=30)
    got = receiver.at("/thumbs")
    assert len(got) >= 3 + 6
    for thumb in got:
        assert assert_thumbnail(thumb, thumbs["secret"]) == (424, 240)  # the stream's own size
        assert thumb.headers["X-Millicast-Stream-Id"] == f"{api.service.account_id}/live"
        assert thumb.headers["X-Millicast-Token-Id"] == str(tok["id"])
        assert thumb.headers["X-Millicast-Feed-Id"] in feeds("started")
    stamps = [int(t.headers["X-Millicast-Timestamp"]) for t in got]
    assert stamps == sorted(stamps)  # one stream's pictures in order
    assert receiver.at("/media-only") == []

    # Ended: once the pictures taken before the end are delivered, no more, and none on demand.
    async def delivered() -> bool:
        listed: list[Any] = await api.ok(
            "GET", f"/api/webhooks/{thumbs['id']}/deliveries?status=pending"
        )
        return listed == []

    await eventually(delivered)
    settled = len(receiver.at("/thumbs"))
    await asyncio.sleep(3)  # three intervals
    assert len(receiver.at("/thumbs")) == settled
    status, answer = await api.call("POST", "/api/thumbnails", {"streamName": "live"})
    assert "not live" in assert_fail(status, answer, 404)

    # The failing endpoint: each newer picture cancelled the older one still waiting.
    listed = await api.ok("GET", f"/api/webhooks/{down['id']}/deliveries?itemCount=100")
    statuses = [d["status"] for d in listed]
    assert statuses.count("pending") <= 1 and statuses.count("cancelled") >= 2, statuses
    assert all("superseded" in d["lastError"] for d in listed if d["status"] == "cancelled")


def _answer(status: int) -> Any:
    from aiohttp import web

    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status)

    return handler


async def test_thumbnail_requests_are_checked(api: Api) -> None:
    for body, field in (
        ({}, "streamName"),
        ({"streamName": ""}, "streamName"),
        ({"streamName": "cam", "tokenId": 0}, "tokenId"),
        ({"streamName": "cam", "tokenId": "x"}, "tokenId"),
    ):
        status, answer = await api.call("POST", "/api/thumbnails", body)
        assert field in answer["data"]["errors"] and status == 400, (body, answer)
    status, answer = await api.call("POST", "/api/thumbnails", {"streamName": "cam"})
    assert "not live" in assert_fail(status, answer, 404)
