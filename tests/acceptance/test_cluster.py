"""A cluster over PostgreSQL and a bucket, three processes with data directories of their own:
the stream is published to node A (`serve --no-dispatcher`), the clip is asked for, read,
downloaded and deleted through node B (`serve --no-dispatcher`), and cut by C (`worker`) from
the segments A put in the bucket. While A ingests, a viewer watches the live stream through B
and B takes its thumbnail, both from the segments in the bucket. No node keeps a clip or
poster on its disk."""

from __future__ import annotations

import asyncio
import io
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import av
import pytest

from mediahooks.clock import iso, now_ms
from mediahooks.media import hls, publisher, synthetic
from support import buckets
from support.crashkit import API_SECRET, MediahooksProcess, server_env
from support.databases import fresh_postgres_database
from support.receiver import Receiver
from support.waiting import eventually

pytestmark = pytest.mark.slow


class Node:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {API_SECRET}"}
        async with self.session.request(method, self.url + path, json=body, headers=headers) as r:
            answer = await r.json(content_type=None)
            assert r.status == 200 and answer["status"] == "success", (r.status, answer)
            return answer["data"]


async def watch_through(node: Node, ingested_on: Path) -> None:
    """A viewer of the live stream `cam` on ``node``, which did not ingest it: every segment of
    the live playlist comes through it, byte for byte what the ingesting node wrote."""
    link = await node.ok("POST", "/api/v3/playback/link", {"streamName": "cam"})
    url = link["playbackUrl"]
    assert url.startswith(node.url)

    got: dict[str, hls.Playlist | bytes] = {}

    async def listed() -> bool:
        async with node.session.get(url) as resp:
            if resp.status != 200:
                return False
            playlist = hls.parse_playlist(await resp.text())
        got["playlist"] = playlist
        return len(playlist.entries) >= 3 and not playlist.ended

    await eventually(listed, timeout=30)
    playlist = got["playlist"]
    assert isinstance(playlist, hls.Playlist)
    for entry in playlist.entries:
        name = entry.uri.split("?", 1)[0].rsplit("/", 1)[-1]
        (written,) = (ingested_on / "timelines").rglob(name)

        async def served(entry: hls.Entry = entry) -> bool:
            async with node.session.get(urljoin(url, entry.uri)) as resp:
                # 503 until the ingesting node has uploaded it.
                if resp.status != 200:
                    return False
                got["segment"] = await resp.read()
                return True

        await eventually(served, timeout=30)
        assert got["segment"] == written.read_bytes()


async def thumbnail_through(node: Node, stream: str) -> int:
    """Ask ``node`` for a thumbnail of the live ``stream`` until it takes one (a few tries, the
    platform's limit being six a minute); the last answer's status."""
    headers = {"Authorization": f"Bearer {API_SECRET}"}
    for _ in range(4):
        async with node.session.post(
            node.url + "/api/thumbnails", json={"streamName": stream}, headers=headers
        ) as resp:
            answer = await resp.json(content_type=None)
            if resp.status == 200:
                assert answer == {"status": "success", "data": True}
                return 200
            assert resp.status == 409, answer
        await asyncio.sleep(1)
    return resp.status


def media_files(data_dir: Path) -> list[Path]:
    """Clips, recordings and posters on a node's disk: in its media folder or upload spool."""
    return [p for d in ("media", "spool") for p in (data_dir / d).rglob("*") if p.is_file()]


async def test_ingest_on_one_node_clip_and_download_through_another(
    tmp_path: Path, receiver: Receiver, s3_endpoint: buckets.Endpoint | None
) -> None:
    storage_url = buckets.new_bucket(s3_endpoint) if s3_endpoint else buckets.fresh_prefix()
    async with fresh_postgres_database() as db_url, AsyncExitStack() as stack:
        processes = {}
        for name, args in (
            ("a", ["serve", "--no-dispatcher", "--port", "0"]),
            ("b", ["serve", "--no-dispatcher", "--port", "0"]),
            ("c", ["worker"]),
        ):
            env = server_env(
                db_url,
                tmp_path / name,
                attempt_timeout=2,
                retry_schedule="0.2,0.2,0.2",
                poll_interval=0.2,
                storage_url=storage_url,
                idle_timeout="2",
            )
            process = MediahooksProcess(args, env, tmp_path / f"{name}.log")
            await stack.enter_async_context(process)
            await process.start()
            processes[name] = process
        session = await stack.enter_async_context(aiohttp.ClientSession())
        a, b = (Node(processes[n].url, session) for n in ("a", "b"))

        await b.ok(
            "POST",
            "/api/webhooks",
            {"url": receiver.url + "/hooks", "isFeedHooks": False, "isMediaHooks": True},
        )
        tok = await b.ok(
            "POST",
            "/api/publish_token",
            {"label": "cam", "streams": [{"streamName": "cam", "isRegex": False}], "clip": True},
        )
        # Eight seconds at once, then at the real pace: the stream is live on A meanwhile.
        start = now_ms() - 8_000
        made = synthetic.iter_segments(14, "ts", width=320, height=180, fps=30)
        segments = await asyncio.to_thread(list, made)
        publishing = asyncio.create_task(
            publisher.publish(
                f"{a.url}/ingest/cam", tok["token"], segments, realtime=True, start_ms=start
            )
        )
        await watch_through(b, tmp_path / "a")
        # A thumbnail of the live stream, asked of B: B reads A's newest segment from the bucket
        # (409 while A has not uploaded that segment yet: asked again a second later).
        assert await thumbnail_through(b, "cam") == 200
        await publishing
        (asset,) = await b.ok(
            "POST",
            "/api/v3/media/assets",
            {"streamName": "cam", "startTime": iso(start), "stopTime": iso(start + 11_000)},
        )

        async def completed() -> bool:
            events = [r.json["event"] for r in receiver.at("/hooks")]
            return "completed" in events

        await eventually(completed, timeout=60)
        read = await b.ok("GET", f"/api/v3/media/assets/{asset['id']}")
        assert read["status"] == "complete"
        assert read["storage"]["path"].startswith(storage_url + "/")
        link = read["download"]["downloadUrl"]
        async with session.get(link, allow_redirects=False) as resp:
            assert resp.status == 307  # to the bucket
            assert not resp.headers["Location"].startswith((a.url, b.url))
        async with session.get(link) as resp:
            assert resp.status == 200
            body = await resp.read()
        with av.open(io.BytesIO(body)) as container:
            assert {s.type for s in container.streams} == {"video", "audio"}
        assert len(body) == read["metadata"]["sizes"]["mp4"]

        done = await b.ok("DELETE", f"/api/v3/media/assets?id={asset['id']}")
        assert done["itemsDeleted"] == 1

        async def deleted() -> bool:
            return "deleted" in [r.json["event"] for r in receiver.at("/hooks")]

        await eventually(deleted)
        async with session.get(link, allow_redirects=False) as resp:
            assert resp.status == 404
        for node in "abc":
            assert media_files(tmp_path / node) == [], node
        # C cut from the bucket: it never had the timeline on its disk.
        assert not list((tmp_path / "c").rglob("*.ts"))
