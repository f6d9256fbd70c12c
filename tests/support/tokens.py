"""Publish tokens made through the API, and a real MPEG-TS segment to publish with them."""

from __future__ import annotations

import functools
from typing import Any

from mediahooks.media import synthetic

from .server import Api


@functools.cache
def ts_segment() -> bytes:
    """One second of real MPEG-TS (H.264 and AAC)."""
    return next(iter(synthetic.iter_segments(1, "ts", 320, 180))).data


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"label": "camera", "streams": [{"streamName": "cam"}], **fields}
    data: dict[str, Any] = await api.ok("POST", "/api/publish_token", body)
    return data
