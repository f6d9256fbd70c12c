"""Media through the API: publish tokens, synthetic streams pushed over HTTP (HLS PUTs),
clips, the hooks they bring, and files read back with PyAV."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import av

from mediahooks.clock import iso, now_ms
from mediahooks.media import publisher, synthetic

from .receiver import Receiver
from .server import Api
from .waiting import eventually

SMALL = {"width": 320, "height": 180, "fps": 30}


async def token(api: Api, *streams: str, record: bool = False, clip: bool = True) -> dict[str, Any]:
    body = {
        "label": "camera",
        "streams": [{"streamName": s, "isRegex": False} for s in streams],
        "record": record,
        "clip": clip and not record,
    }
    data: dict[str, Any] = await api.ok("POST", "/api/publish_token", body)
    return data


async def push(
    api: Api, tok: dict[str, Any], stream: str, seconds: float, kind: str = "ts", ago: float = 1
) -> int:
    """Publish a synthetic stream that ended ``ago`` seconds ago; return its wall-clock start."""
    start = now_ms() - int((seconds + ago) * 1000)
    segments = synthetic.iter_segments(seconds, kind, **SMALL)  # type: ignore[arg-type]
    await publisher.publish(
        f"{api.url}/ingest/{stream}", tok["token"], segments, realtime=False, start_ms=start
    )
    return start


async def clip(api: Api, stream: str, start: int, stop: int, **extra: Any) -> list[Any]:
    body = {"streamName": stream, "startTime": iso(start), "stopTime": iso(stop), **extra}
    data: list[Any] = await api.ok("POST", "/api/v3/media/assets", body)
    return data


async def hooks_for(receiver: Receiver, path: str, asset_id: str, count: int) -> list[str]:
    async def enough() -> bool:
        return len(events_of(receiver, path, asset_id)) >= count

    await eventually(enough, timeout=60)
    return events_of(receiver, path, asset_id)


def events_of(receiver: Receiver, path: str, asset_id: str) -> list[str]:
    return [
        r.json["event"]
        for r in receiver.at(path)
        if r.json["type"] == "media" and r.json["data"]["mediaAssetId"] == asset_id
    ]


async def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as resp:
        return resp.status, await resp.read(), resp.headers


def media_of(data: bytes) -> tuple[float, set[str]]:
    with av.open(io.BytesIO(data), "r") as container:
        kinds: set[str] = {s.type for s in container.streams}
        assert container.duration is not None
        return container.duration / 1_000_000, kinds


async def put(api: Api, path: str, data: bytes, tok: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with (
        aiohttp.ClientSession() as s,
        s.put(f"{api.url}/ingest/{path}", data=data, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None) if resp.status >= 400 else None


async def link(api: Api, stream: str, **body: Any) -> str:
    data = await api.ok("POST", "/api/v3/playback/link", {"streamName": stream, **body})
    return str(data["playbackUrl"])
