"""The storage seam and its faults: downloads proxied through the
service, and a bucket that goes away while a clip is cut (the upload waits, nothing is lost,
`completed` comes once the bucket holds the file)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from mediahooks import server
from mediahooks.media import synthetic
from mediahooks.service import Service
from mediahooks.storage.uploads import segment_key
from support import buckets
from support.live import Publisher, broadcasts_of, refusals, rtmp_url, srt_ffmpeg, srt_url
from support.live import ffmpeg as rtmp_ffmpeg
from support.media import SMALL, clip, events_of, fetch, hooks_for, media_of, push, put, token
from support.receiver import Receiver
from support.server import Api, ApiFactory, settings_for
from support.waiting import eventually
from support.whipkit import WhipClient


@pytest.mark.parametrize("storage", ["s3"])
async def test_downloads_through_the_service_serve_ranges(
    api_factory: ApiFactory, receiver: Receiver, storage: str
) -> None:
    api = await api_factory(storage_proxy=True)
    await api.webhook(receiver.url + "/proxy")
    tok = await token(api, "cam")
    start = await push(api, tok, "cam", 12)
    (asset,) = await clip(api, "cam", start, start + 11_000)
    assert await hooks_for(receiver, "/proxy", asset["id"], 2) == ["processing", "completed"]
    read = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    link = read["download"]["downloadUrl"]
    assert link.startswith(api.url + "/media/") and read["storage"]["path"].startswith("s3://")
    status, body, headers = await fetch(link)
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    assert len(body) == read["metadata"]["sizes"]["mp4"] and headers["Accept-Ranges"] == "bytes"
    status, part, headers = await fetch(link, {"Range": "bytes=100-199"})
    assert status == 206 and part == body[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(body)}"
    status, tail, _ = await fetch(link, {"Range": "bytes=-50"})
    assert status == 206 and tail == body[-50:]
    status, refused, _ = await fetch(link, {"Range": f"bytes={len(body)}-"})
    assert status == 416 and b"outside the file" in refused


# How long the bucket is away while a stream is published and a clip of it is cut.
OUTAGE_SECONDS = 20


@pytest.fixture
def own_endpoint() -> Iterator[buckets.Endpoint]:
    """A moto server of this test's own, to stop and start again on the same port."""
    if buckets.GIVEN_URL:
        pytest.skip("stopping the bucket needs the moto server the tests start")
    with buckets.moto_endpoint() as endpoint:
        yield endpoint


@pytest.mark.parametrize("storage", ["s3"])
async def test_a_bucket_away_during_a_publish_and_a_clip_loses_nothing(
    api_factory: ApiFactory,
    receiver: Receiver,
    own_endpoint: buckets.Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    storage: str,
) -> None:
    for name, value in own_endpoint.env().items():
        monkeypatch.setenv(name, value)
    api = await api_factory(storage_url=buckets.new_bucket(own_endpoint))
    await api.webhook(receiver.url + "/away")
    tok = await token(api, "cam")
    own_endpoint.stop()
    back_at = asyncio.get_running_loop().time() + OUTAGE_SECONDS
    # The bucket is gone: the publish still lands, and a clip of it is asked for.
    start = await push(api, tok, "cam", 14)
    (asset,) = await clip(api, "cam", start + 1_000, start + 13_000)
    await receiver.wait_for(1, "/away")
    # The cut is done well before the bucket is back, its upload failing meanwhile.
    await asyncio.sleep(back_at - asyncio.get_running_loop().time())
    assert events_of(receiver, "/away", asset["id"]) == ["processing"]
    waiting = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    assert waiting["status"] == "processing"
    assert api.service.uploads.pending > 0  # the segments wait in the spool
    own_endpoint.start()
    assert await hooks_for(receiver, "/away", asset["id"], 2) == ["processing", "completed"]
    done = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    # `completed` came once the bucket held the file, and of its full size.
    assert (
        await api.service.storage.size(done["storage"]["path"])
        == (done["metadata"]["sizes"]["mp4"])
    )
    status, body, _ = await fetch(done["download"]["downloadUrl"])
    assert status == 200 and len(body) == done["metadata"]["sizes"]["mp4"]
    duration, kinds = media_of(body)
    assert kinds == {"video", "audio"} and 11.5 <= duration <= 13.5

    async def spool_empty() -> bool:
        spool = api.service.settings.data_dir / "spool"
        return api.service.uploads.pending == 0 and not [p for p in spool.rglob("*") if p.is_file()]

    await eventually(spool_empty)
    assert events_of(receiver, "/away", asset["id"]) == ["processing", "completed"]  # one each
    # Every segment published while the bucket was away is in it now.
    timelines = api.service.settings.data_dir / "timelines"
    published = sorted(str(p) for p in timelines.rglob("*.ts"))
    assert len(published) >= 14
    for path in published:
        assert await api.service.storage.size(api.service.storage.location(segment_key(path)))

    # Away again for a delete: the asset stays `deleting`, and the sweeper finishes the
    # removal once the bucket is back.
    own_endpoint.stop()
    gone = await api.ok("DELETE", f"/api/v3/media/assets?id={asset['id']}")
    assert gone["itemsDeleted"] == 1
    await asyncio.sleep(2)  # sweeps that find the bucket away
    assert events_of(receiver, "/away", asset["id"]) == ["processing", "completed"]
    own_endpoint.start()
    events = await hooks_for(receiver, "/away", asset["id"], 3)
    assert events == ["processing", "completed", "deleted"]
    location = done["storage"]["path"]
    assert await api.service.storage.size(location) is None


@pytest.mark.parametrize("storage", ["s3"])
async def test_past_the_spool_bound_every_door_refuses_until_the_bucket_is_back(
    api_factory: ApiFactory,
    own_endpoint: buckets.Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    storage: str,
) -> None:
    caplog.set_level(logging.INFO, "mediahooks.srt")
    for name, value in own_endpoint.env().items():
        monkeypatch.setenv(name, value)
    # A spool of one byte: the first segment the bucket cannot take fills it.
    api = await api_factory(
        storage_url=buckets.new_bucket(own_endpoint),
        storage_spool_bytes=1,
        webrtc_addresses="127.0.0.1",
    )
    tok = await token(api, "cam", "rtmp", "srt", "whip")
    stream = synthetic.iter_segments(2, "ts", **SMALL)
    first, second = itertools.islice(stream, 2)
    own_endpoint.stop()
    assert (await put(api, "cam/0.ts", first.data, tok["token"]))[0] == 201
    # HLS: 503 with the envelope.
    status, body = await put(api, "cam/1.ts", second.data, tok["token"])
    assert status == 503 and "spool is full" in body["data"]["message"]
    # WHIP: 503 with the envelope.
    whip_url = f"{api.url}/api/whip/whip"
    offer = await WhipClient(whip_url).offer()
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {tok['token']}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(whip_url, data=offer, headers=headers) as resp,
    ):
        answer = await resp.json(content_type=None)
        assert resp.status == 503 and "spool is full" in answer["data"]["message"], answer
    # RTMP: publish refused, ffmpeg shows why.
    code, said = await (await Publisher.start(rtmp_ffmpeg(rtmp_url(api, "rtmp", tok), 3))).finish(
        timeout=20
    )
    assert code != 0 and "spool is full" in said
    # SRT: the caller rejected before its handshake completes (1503), the reason in the log.
    srt_id = f"srt?t={tok['token']}"
    code, _ = await (await Publisher.start(srt_ffmpeg(srt_url(api, srt_id), 3))).finish(20)
    assert code != 0
    assert any("'srt'" in r and "spool is full" in r for r in refusals(caplog))
    for name in ("rtmp", "srt", "whip"):
        assert await broadcasts_of(api, name) == []

    own_endpoint.start()

    async def taken() -> bool:
        return (await put(api, "cam/1.ts", second.data, tok["token"]))[0] == 201

    await eventually(taken, timeout=60)

    async def drained() -> bool:
        return api.service.uploads.pending == 0

    await eventually(drained, timeout=60)


@pytest.mark.parametrize("storage", ["s3"])
async def test_segments_taken_in_while_the_bucket_is_away_go_up_after_a_restart(
    database_url: str,
    tmp_path: Path,
    own_endpoint: buckets.Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    storage: str,
) -> None:
    """The upload queue is the spool directory: a service stopped with segments not yet in the
    bucket uploads them after its next start."""
    for name, value in own_endpoint.env().items():
        monkeypatch.setenv(name, value)
    settings = settings_for(
        database_url, tmp_path / "data", storage_url=buckets.new_bucket(own_endpoint)
    )
    own_endpoint.stop()
    first = Service(settings)
    await first.open(dispatch=False)
    running = await server.start(first, "127.0.0.1", 0)
    try:
        api = Api(running.url, first, aiohttp.ClientSession(), running)
        tok = await token(api, "cam")
        await push(api, tok, "cam", 6)
        await api.session.close()
        assert first.uploads.pending > 0
    finally:
        await running.stop()
        await first.close()
    published = sorted(str(p) for p in (settings.data_dir / "timelines").rglob("*.ts"))
    assert len(published) >= 6
    markers = [p for p in (settings.data_dir / "spool").rglob("*") if p.is_file()]
    assert len(markers) == len(published)

    own_endpoint.start()
    second = Service(settings)
    await second.open(dispatch=False)
    try:

        async def uploaded() -> bool:
            return second.uploads.pending == 0

        await eventually(uploaded, timeout=60)
        for path in published:
            assert await second.storage.size(second.storage.location(segment_key(path)))
        assert not [p for p in (settings.data_dir / "spool").rglob("*") if p.is_file()]
    finally:
        await second.close()
