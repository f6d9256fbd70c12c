"""Typed hooks for receivers, lenient where the platform varies (standard library only).

The one parser of hook bodies (the service's own tests read what it sends with it too). Unlike
the sender's strict wire format (`mediahooks.events`), these models accept every variant
the platform documents: `metadata` missing, a `channelId` in place of the stream fields (media
from a channel), a `feeds` `ended` without `started`, fields added later (kept in ``extra``),
events added later, and hook types we have no model for (`OtherHook`, data kept as is).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FeedsData",
    "FeedsHook",
    "Hook",
    "JsonHook",
    "MalformedHook",
    "MediaData",
    "MediaHook",
    "OtherHook",
    "ThumbnailHook",
    "parse",
    "parse_thumbnail",
]


class MalformedHook(ValueError):
    """A body that is not a hook, or lacks a field a receiver relies on."""


def loads_object(body: bytes | str) -> dict[str, Any]:
    """A JSON object from a hook body, or MalformedHook."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedHook(f"body is not JSON: {exc}") from exc
    except RecursionError:
        # Nesting deeper than the interpreter's stack: no hook is, and signing it changes nothing.
        raise MalformedHook("body is not a hook: its JSON is nested too deeply") from None
    if not isinstance(raw, dict):
        raise MalformedHook("body is not a JSON object")
    return raw


@dataclass(frozen=True)
class MediaData:
    """A clip or recording. Media from a stream carries ``stream_name``, ``stream_id`` and
    usually ``token_id``; media from a channel carries ``channel_id`` instead."""

    media_asset_id: str
    type: str | None = None  # "clip" | "recording"
    start_time: int | None = None
    token_id: int | None = None
    stream_name: str | None = None
    stream_id: str | None = None
    channel_id: str | None = None
    expiration: int | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str | None:
        """Where the media came from: the stream name, else the channel id."""
        return self.stream_name or self.channel_id

    @property
    def error(self) -> str | None:
        """Why an `errored` asset failed, when the sender says (``metadata.error``)."""
        value = (self.metadata or {}).get("error")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class FeedsData:
    """A publishing feed that started or ended. Times are epoch ms."""

    feed_id: str
    name: str | None = None
    stream_id: str | None = None
    account_id: str | None = None
    started: int | None = None
    ended: int | None = None
    active: bool | None = None
    priority: int | None = None
    source_id: str | None = None
    simulcast_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaHook:
    event: str  # processing | completed | errored | deleted (later events are kept, not refused)
    timestamp: int
    data: MediaData
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    type: str = "media"


@dataclass(frozen=True)
class FeedsHook:
    event: str  # started | ended
    timestamp: int
    data: FeedsData
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    type: str = "feeds"


@dataclass(frozen=True)
class OtherHook:
    """A hook type without a model here (transcoder, viewerConnection, ...): data as sent."""

    type: str
    event: str
    timestamp: int
    data: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class ThumbnailHook:
    """A live stream's picture: the body is the JPEG itself, and what the sender says about it
    travels in ``X-Millicast-*`` headers (the signature covers the image bytes)."""

    timestamp: int
    stream_id: str  # accountId/streamName
    feed_id: str | None
    token_id: int | None
    image: bytes = field(repr=False)
    type: str = "thumbnail"
    event: str = "thumbnail"

    @property
    def stream_name(self) -> str:
        return self.stream_id.partition("/")[2] or self.stream_id


JsonHook = MediaHook | FeedsHook | OtherHook
Hook = JsonHook | ThumbnailHook


def parse(body: bytes | str | Mapping[str, Any]) -> JsonHook:
    """Parse a hook body; raise MalformedHook when it is not a hook envelope, or when a field a
    receiver relies on (``mediaAssetId``, ``feedId``) is missing or of the wrong type."""
    raw = dict(body) if isinstance(body, Mapping) else loads_object(body)
    kind, event, data = raw.get("type"), raw.get("event"), raw.get("data")
    if not isinstance(kind, str) or not isinstance(event, str):
        raise MalformedHook("a hook has a string `type` and `event`")
    if not isinstance(data, dict):
        raise MalformedHook("hook `data` must be an object")
    timestamp = _integer(raw, "timestamp", required=True)
    assert timestamp is not None
    if kind == "media":
        return MediaHook(event, timestamp, _media(data), raw)
    if kind == "feeds":
        return FeedsHook(event, timestamp, _feeds(data), raw)
    return OtherHook(kind, event, timestamp, data, raw)


_JPEG_START = b"\xff\xd8\xff"


def is_image(headers: Mapping[str, str]) -> bool:
    """Whether a request carries a picture rather than a JSON hook (its Content-Type says)."""
    kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return kind.split(";")[0].strip().lower().startswith("image/")


def parse_thumbnail(body: bytes, headers: Mapping[str, str]) -> ThumbnailHook:
    """Parse a `thumbnail` hook from its JPEG body and headers; raise MalformedHook when the
    body is not a JPEG or the timestamp or stream header is missing."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if not body.startswith(_JPEG_START):
        raise MalformedHook("a thumbnail hook's body must be a JPEG image")
    stream_id = lowered.get("x-millicast-stream-id", "").strip()
    if not stream_id:
        raise MalformedHook("a thumbnail hook needs its X-Millicast-Stream-Id header")
    timestamp = _header_number(lowered, "x-millicast-timestamp")
    if timestamp is None:
        raise MalformedHook("a thumbnail hook needs its X-Millicast-Timestamp header")
    return ThumbnailHook(
        timestamp=timestamp,
        stream_id=stream_id,
        feed_id=lowered.get("x-millicast-feed-id") or None,
        token_id=_header_number(lowered, "x-millicast-token-id"),
        image=bytes(body),
    )


def _header_number(headers: dict[str, str], name: str) -> int | None:
    value = headers.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise MalformedHook(f"{name} must be a whole number, not {value[:32]!r}")
    return int(value)


_MEDIA_FIELDS = {
    "mediaAssetId",
    "type",
    "startTime",
    "tokenId",
    "streamName",
    "streamId",
    "channelId",
    "expiration",
    "metadata",
}


def _media(data: dict[str, Any]) -> MediaData:
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise MalformedHook("media hook `metadata` must be an object")
    return MediaData(
        media_asset_id=_text(data, "mediaAssetId", required=True) or "",
        type=_text(data, "type"),
        start_time=_integer(data, "startTime"),
        token_id=_integer(data, "tokenId"),
        stream_name=_text(data, "streamName"),
        stream_id=_text(data, "streamId"),
        channel_id=_text(data, "channelId"),
        expiration=_integer(data, "expiration"),
        metadata=metadata,
        extra={k: v for k, v in data.items() if k not in _MEDIA_FIELDS},
    )


_FEEDS_FIELDS = {
    "feedId",
    "name",
    "streamId",
    "accountId",
    "started",
    "ended",
    "active",
    "priority",
    "sourceId",
    "simulcastId",
}


def _feeds(data: dict[str, Any]) -> FeedsData:
    active = data.get("active")
    if active is not None and not isinstance(active, bool):
        raise MalformedHook("feeds hook `active` must be true or false")
    return FeedsData(
        feed_id=_text(data, "feedId", required=True) or "",
        name=_text(data, "name"),
        stream_id=_text(data, "streamId"),
        account_id=_text(data, "accountId"),
        started=_integer(data, "started"),
        ended=_integer(data, "ended"),
        active=active,
        priority=_integer(data, "priority"),
        source_id=_text(data, "sourceId"),
        simulcast_id=_text(data, "simulcastId"),
        extra={k: v for k, v in data.items() if k not in _FEEDS_FIELDS},
    )


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise MalformedHook(f"`{name}` is required")
        return None
    if not isinstance(value, str):
        raise MalformedHook(f"`{name}` must be a string")
    return value


def _integer(data: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            raise MalformedHook(f"`{name}` is required")
        return None
    # JSON numbers only (bool is an int to Python but never a number on the wire); a whole
    # float such as 1725260343575.0 is taken, as some JSON encoders write integers that way.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedHook(f"`{name}` must be a number")
    if isinstance(value, float) and not value.is_integer():
        raise MalformedHook(f"`{name}` must be a whole number")
    return int(value)
