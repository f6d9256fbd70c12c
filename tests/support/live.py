"""Live streams: real publishers (the ffmpeg command line over RTMP and SRT, their URLs and the
refusals they meet) and the synthetic stream published in the background, the webhooks that
follow them, and what they leave in the database and in the recordings (read back with
ffprobe)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import av
import pytest
from sqlalchemy import func, select

from mediahooks.clock import now_ms
from mediahooks.media import publisher, synthetic
from mediahooks.store.schema import broadcasts, segments

from .media import SMALL, fetch, hooks_for
from .mediakit import lavfi_input
from .receiver import Receiver
from .server import Api
from .waiting import eventually

GOP = 1.0  # seconds between keyframes in what the publishers send (-g 30 at 30 fps)


def ffmpeg(url: str, seconds: float, *output: str, video: str = "libx264") -> list[str]:
    """The command a user types: a test picture and tone, x264 with a keyframe a second, no
    B-frames, AAC, FLV over RTMP."""
    codec = ["-c:v", video] + (
        ["-preset", "ultrafast", "-g", "30", "-bf", "0"] if video == "libx264" else []
    )
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-re", *lavfi_input("640x360"),
        "-t", f"{seconds:g}", *codec, "-c:a", "aac", *output, "-f", "flv", url,
    ]  # fmt: skip


def rtmp_url(api: Api, stream: str, tok: dict[str, Any], scheme: str = "rtmp") -> str:
    assert api.service.rtmp is not None
    return f"{scheme}://127.0.0.1:{api.service.rtmp.port}/v2/pub/{stream}?token={tok['token']}"


def srt_url(api: Api, streamid: str, passphrase: str | None = None) -> str:
    """The URL a user types: the streamid percent-encoded whole, as the platform gives it."""
    assert api.service.srt is not None
    url = f"srt://127.0.0.1:{api.service.srt.port}?streamid={quote(streamid, safe='')}"
    if passphrase is not None:
        url += f"&passphrase={quote(passphrase, safe='')}&pbkeylen=16"
    return url


def srt_ffmpeg(url: str, seconds: float) -> list[str]:
    """A test picture and tone, x264 with a keyframe a second, no B-frames, AAC, MPEG-TS over
    SRT."""
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-re", *lavfi_input("640x360"),
        "-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-bf", "0",
        "-c:a", "aac", "-f", "mpegts", url,
    ]  # fmt: skip


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]


class Publisher:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, command: list[str]) -> Publisher:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def finish(self, timeout: float = 40) -> tuple[int, str]:
        _, err = await asyncio.wait_for(self.process.communicate(), timeout)
        assert self.process.returncode is not None
        return self.process.returncode, err.decode(errors="replace")


async def subscribe(api: Api, receiver: Receiver) -> None:
    await api.webhook(receiver.url + "/media")
    feeds = {"url": receiver.url + "/feeds", "isFeedHooks": True, "isMediaHooks": False}
    await api.ok("POST", "/api/webhooks", feeds)


def feeds_of(receiver: Receiver, stream: str) -> list[str]:
    return [r.json["event"] for r in receiver.at("/feeds") if r.json["data"]["name"] == stream]


async def broadcasts_of(api: Api, stream: str) -> list[Any]:
    query = select(broadcasts).where(broadcasts.c.stream_name == stream)
    async with api.service.db.engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def segments_of(api: Api, stream: str) -> int:
    query = (
        select(func.count())
        .select_from(segments.join(broadcasts))
        .where(broadcasts.c.stream_name == stream)
    )
    async with api.service.db.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def coverage(api: Api, stream: str) -> tuple[int, int]:
    query = (
        select(
            func.min(segments.c.start_ms), func.max(segments.c.start_ms + segments.c.duration_ms)
        )
        .select_from(segments.join(broadcasts))
        .where(broadcasts.c.stream_name == stream)
    )
    async with api.service.db.engine.connect() as conn:
        lo, hi = (await conn.execute(query)).one()
    return int(lo), int(hi)


async def recorded(api: Api, receiver: Receiver, tok: dict[str, Any]) -> dict[str, Any]:
    """The token's one recording, once complete (its hooks received)."""

    async def done() -> bool:
        found = await api.ok("GET", f"/api/v3/media/assets?type=recording&tokenId={tok['id']}")
        return bool(found) and found[0]["status"] in ("complete", "error")

    await eventually(done, timeout=60)
    (asset,) = await api.ok("GET", f"/api/v3/media/assets?type=recording&tokenId={tok['id']}")
    assert asset["status"] == "complete", asset
    assert await hooks_for(receiver, "/media", asset["id"], 2) == ["processing", "completed"]
    return dict(await api.ok("GET", f"/api/v3/media/assets/{asset['id']}"))


async def probe(asset: dict[str, Any], directory: Path) -> tuple[float, set[str]]:
    """Download the asset and ask ffprobe (an independent reader) what it holds."""
    status, body, _ = await fetch(asset["download"]["downloadUrl"])
    assert status == 200
    path = directory / f"{asset['id']}.mp4"
    path.write_bytes(body)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name:format=duration",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    found = json.loads(out)
    codecs = {f"{s['codec_type']}:{s['codec_name']}" for s in found["streams"]}
    return float(found["format"]["duration"]), codecs


BOTH = {"video:h264", "audio:aac"}


async def publish_token(api: Api, stream: str) -> str:
    body = {
        "label": "camera",
        "streams": [{"streamName": stream, "isRegex": False}],
        "record": False,
        "clip": True,
    }
    data = await api.ok("POST", "/api/publish_token", body)
    return str(data["token"])


async def live_stream(
    api: Api, token: str, stream: str, history: int, seconds: int
) -> asyncio.Task[Any]:
    """Publish in the background: ``history`` seconds at once, then live at the real pace.

    The media is made up front, so a busy machine cannot make the stream fall behind.
    """
    made = synthetic.iter_segments(seconds, "ts", **SMALL)
    segments = await asyncio.to_thread(list, made)
    return asyncio.create_task(
        publisher.publish(
            f"{api.url}/ingest/{stream}",
            token,
            segments,
            realtime=True,
            start_ms=now_ms() - history * 1000,
        )
    )


async def stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


WEBM = {"video:vp8", "audio:opus"}


async def ffprobe(asset: dict[str, Any], directory: Path) -> tuple[str, float, set[str]]:
    """Download the asset; ffprobe's container name, duration and streams."""
    status, body, headers = await fetch(asset["download"]["downloadUrl"])
    assert status == 200
    path = directory / Path(urlsplit(asset["download"]["downloadUrl"]).path).name
    path.write_bytes(body)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_type,codec_name:format=duration,format_name", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    found = json.loads(out)
    codecs = {f"{s['codec_type']}:{s['codec_name']}" for s in found["streams"]}
    assert headers["Content-Type"] == ("video/webm" if "webm" in path.name else "video/mp4")
    return found["format"]["format_name"], float(found["format"]["duration"]), codecs


def extents(path: Path) -> dict[str, tuple[float, float]]:
    """Where each track's packets start and end (s), read with PyAV."""
    found: dict[str, tuple[float, float]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            at = float(packet.pts * packet.time_base)
            lo, hi = found.get(packet.stream.type, (at, at))
            found[packet.stream.type] = (min(lo, at), max(hi, at))
    return found


async def spans(api: Api, stream: str) -> list[tuple[str, int, int]]:
    """Each broadcast of the stream, in order: its kind and the range its segments cover."""
    query = (
        select(
            broadcasts.c.kind,
            func.min(segments.c.start_ms),
            func.max(segments.c.start_ms + segments.c.duration_ms),
        )
        .select_from(segments.join(broadcasts))
        .where(broadcasts.c.stream_name == stream)
        .group_by(broadcasts.c.id, broadcasts.c.kind)
        .order_by(broadcasts.c.id)
    )
    async with api.service.db.engine.connect() as conn:
        return [(kind, int(lo), int(hi)) for kind, lo, hi in (await conn.execute(query)).all()]
