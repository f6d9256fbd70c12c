"""The storage seam and its faults: downloads proxied through the
service, and a bucket that goes away while a clip is cut (the upload waits, nothing is lost,
`completed` comes once the bucket holds the file)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from mediahooks.media import synthetic
from mediahooks.storage.uploads import segment_key
from support import buckets
from support.media import SMALL, clip, events_of, fetch, hooks_for, media_of, push, put, token
from support.receiver import Receiver
from support.server import ApiFactory
from support.waiting import eventually


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
    # The bucket is gone: the publish still lands, and a clip of it is asked for.
    start = await push(api, tok, "cam", 14)
    (asset,) = await clip(api, "cam", start + 1_000, start + 13_000)
    await receiver.wait_for(1, "/away")
    await asyncio.sleep(5)  # the cut is done by now, its upload failing
    assert events_of(receiver, "/away", asset["id"]) == ["processing"]
    waiting = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    assert waiting["status"] == "processing"
    own_endpoint.start()
    assert await hooks_for(receiver, "/away", asset["id"], 2) == ["processing", "completed"]
    done = await api.ok("GET", f"/api/v3/media/assets/{asset['id']}")
    status, body, _ = await fetch(done["download"]["downloadUrl"])
    assert status == 200 and len(body) == done["metadata"]["sizes"]["mp4"]
    duration, kinds = media_of(body)
    assert kinds == {"video", "audio"} and 11.5 <= duration <= 13.5

    async def spool_empty() -> bool:
        spool = api.service.settings.data_dir / "spool"
        return api.service.uploads.pending == 0 and not [p for p in spool.rglob("*") if p.is_file()]

    await eventually(spool_empty)
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
async def test_past_the_spool_bound_ingest_answers_503_until_the_bucket_is_back(
    api_factory: ApiFactory,
    own_endpoint: buckets.Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    storage: str,
) -> None:
    for name, value in own_endpoint.env().items():
        monkeypatch.setenv(name, value)
    # A spool of one byte: the first segment the bucket cannot take fills it.
    api = await api_factory(storage_url=buckets.new_bucket(own_endpoint), storage_spool_bytes=1)
    tok = (await token(api, "cam"))["token"]
    stream = synthetic.iter_segments(2, "ts", **SMALL)
    first, second = itertools.islice(stream, 2)
    own_endpoint.stop()
    assert (await put(api, "cam/0.ts", first.data, tok))[0] == 201
    status, body = await put(api, "cam/1.ts", second.data, tok)
    assert status == 503 and "spool is full" in body["data"]["message"]
    own_endpoint.start()

    async def taken() -> bool:
        return (await put(api, "cam/1.ts", second.data, tok))[0] == 201

    await eventually(taken, timeout=60)

    async def drained() -> bool:
        return api.service.uploads.pending == 0

    await eventually(drained, timeout=60)
