"""The wire format: hook bodies exactly as the platform sends them (pure, standard library only).

A hook is ``{"type", "event", "timestamp", "data"}``; times are epoch milliseconds. Bodies are
encoded once, when the event is committed, and those bytes are what every attempt sends and
every signature covers.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

MediaEvent = Literal["processing", "completed", "errored", "deleted"]
FeedsEvent = Literal["started", "ended"]
MediaType = Literal["clip", "recording"]

# The hook `type` on the wire of each kind a webhook can take.
HOOK_TYPES: tuple[str, ...] = (
    "media",
    "feeds",
    "recordings",
    "thumbnail",
    "viewerConnection",
    "transcoder",
)


def new_asset_id() -> str:
    """A media asset id: 32 lowercase hex characters, as on the platform."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class MediaData:
    media_asset_id: str
    token_id: int
    stream_name: str
    stream_id: str
    start_time: int
    type: MediaType
    metadata: dict[str, Any] | None = None
    expiration: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # Key order follows the platform's `completed` example, so our bytes match its bytes.
        out: dict[str, Any] = {
            "mediaAssetId": self.media_asset_id,
            "tokenId": self.token_id,
            "streamName": self.stream_name,
            "streamId": self.stream_id,
            "startTime": self.start_time,
        }
        if self.metadata is not None:
            out["metadata"] = self.metadata
        out["type"] = self.type
        if self.expiration is not None:
            out["expiration"] = self.expiration
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class FeedsData:
    feed_id: str
    account_id: str
    name: str
    stream_id: str
    started: int | None  # the platform's `ended` example has none
    active: bool
    ended: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "feedId": self.feed_id,
            "accountId": self.account_id,
            "name": self.name,
            "streamId": self.stream_id,
        }
        if self.started is not None:
            out["started"] = self.started
        out["active"] = self.active
        if self.ended is not None:
            out["ended"] = self.ended
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class ViewerData:
    """`viewerConnection` hooks: which stream the viewers came to or left."""

    name: str
    account_id: str
    stream_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "accountId": self.account_id,
            "streamId": self.stream_id,
        }
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class RecordingData:
    """`recordings` hooks (the platform's older hooks of a recording's life)."""

    # The platform's ids are integers; ours are the asset's id (32 hex characters).
    record_file_id: str | int
    token_id: int
    stream_name: str
    recorded_on: int
    removed_on: int | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "recordFileId": self.record_file_id,
            "tokenId": self.token_id,
            "streamName": self.stream_name,
            "recordedOn": self.recorded_on,
        }
        if self.removed_on is not None:
            out["removedOn"] = self.removed_on
        if self.metadata is not None:
            out["metadata"] = self.metadata
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class TranscoderData:
    """`transcoder` hooks. There are no transcoders here: only test events carry these."""

    transcoder_id: str
    transcoder_name: str
    cluster: str
    created_on: int
    status: str  # Active | Shutdown | Deleted

    def to_json(self) -> dict[str, Any]:
        return {
            "transcoderId": self.transcoder_id,
            "transcoderName": self.transcoder_name,
            "cluster": self.cluster,
            "createdOn": self.created_on,
            "status": self.status,
        }


HookData = MediaData | FeedsData | ViewerData | RecordingData | TranscoderData


@dataclass(frozen=True)
class Hook:
    type: str
    event: str
    timestamp: int
    data: HookData

    @property
    def stream_name(self) -> str:
        data = self.data
        if isinstance(data, MediaData | RecordingData):
            return data.stream_name
        if isinstance(data, TranscoderData):
            return data.transcoder_name
        return data.name

    @property
    def ordering_key(self) -> str:
        """Events with the same key reach a webhook in the order they were committed."""
        data = self.data
        if isinstance(data, MediaData):
            return data.media_asset_id
        if isinstance(data, RecordingData):
            # The asset's key: its `recordings` and `media` hooks keep one order.
            return str(data.record_file_id)
        if isinstance(data, ViewerData):
            # A stream's viewer events in order; hashed, as a stream id can outgrow the column.
            return "viewers:" + hashlib.sha1(data.stream_id.encode()).hexdigest()
        if isinstance(data, TranscoderData):
            return "transcoder:" + hashlib.sha1(data.transcoder_id.encode()).hexdigest()
        return f"feed:{data.feed_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "event": self.event,
            "timestamp": self.timestamp,
            "data": self.data.to_json(),
        }


def media_hook(event: MediaEvent, data: MediaData, timestamp: int) -> Hook:
    return Hook(type="media", event=event, timestamp=timestamp, data=data)


def feeds_hook(event: FeedsEvent, data: FeedsData, timestamp: int) -> Hook:
    return Hook(type="feeds", event=event, timestamp=timestamp, data=data)


def viewer_hook(event: str, data: ViewerData, timestamp: int) -> Hook:
    return Hook(type="viewerConnection", event=event, timestamp=timestamp, data=data)


def recordings_hook(event: str, data: RecordingData, timestamp: int) -> Hook:
    return Hook(type="recordings", event=event, timestamp=timestamp, data=data)


def transcoder_hook(event: str, data: TranscoderData, timestamp: int) -> Hook:
    return Hook(type="transcoder", event=event, timestamp=timestamp, data=data)


@dataclass(frozen=True)
class ImageHook:
    """A `thumbnail` hook: the body is the JPEG itself, and what the platform says about it
    travels in headers (`X-Millicast-Signature` is computed over the JPEG like any body)."""

    timestamp: int
    feed_id: str
    stream_id: str  # accountId/streamName
    token_id: int
    jpeg: bytes
    type: str = "thumbnail"
    event: str = "thumbnail"

    @property
    def stream_name(self) -> str:
        return self.stream_id.partition("/")[2]

    @property
    def ordering_key(self) -> str:
        # One stream's pictures in order; a newer one supersedes those not yet delivered.
        return "thumbnail:" + hashlib.sha1(self.stream_id.encode()).hexdigest()

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "image/jpeg",
            "X-Millicast-Timestamp": str(self.timestamp),
            "X-Millicast-Feed-Id": self.feed_id,
            "X-Millicast-Stream-Id": self.stream_id,
            "X-Millicast-Token-Id": str(self.token_id),
        }


AnyHook = Hook | ImageHook


def encode(hook: Hook) -> bytes:
    """Compact JSON, as the platform sends it: no spaces, UTF-8, no trailing newline."""
    return json.dumps(hook.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def sample(hook_type: str, account_id: str, now: int) -> Hook | None:
    """A made-up JSON hook of ``hook_type`` (its wire name) for test sends; None for
    `thumbnail` (its test is a picture, `thumbnails.sample`) and for unknown types."""
    stream = "mediahooks-test"
    stream_id = f"{account_id}/{stream}"
    if hook_type == "media":
        data = MediaData(new_asset_id(), 0, stream, stream_id, now, "clip", metadata={})
        return media_hook("completed", data, now)
    if hook_type == "feeds":
        feed = FeedsData(new_asset_id(), account_id, stream, stream_id, started=now, active=True)
        return feeds_hook("started", feed, now)
    if hook_type == "recordings":
        return recordings_hook("started", RecordingData(new_asset_id(), 0, stream, now), now)
    if hook_type == "viewerConnection":
        return viewer_hook("FirstViewerConnection", ViewerData(stream, account_id, stream_id), now)
    if hook_type == "transcoder":
        transcoder = TranscoderData(new_asset_id(), "mediahooks-test", "none", now, "Active")
        return transcoder_hook("ACTIVE", transcoder, now)
    return None
