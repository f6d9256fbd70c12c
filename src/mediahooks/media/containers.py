"""Which container a timeline's media is in, and so its clips' (pure): the one place that
knows.

A broadcast's `kind` says how its segments are stored: "ts" (MPEG-TS segments), "fmp4" (an init
segment, then fMP4 fragments) or "webm" (a WebM header, then Matroska clusters, each starting
on a keyframe). As on the platform, H.264 gives MP4 clips and recordings and VP8/VP9/AV1 give
WebM ones; HLS playback carries only the first (MPEG-TS and fMP4 timelines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediahooks.media.formats import Kind


@dataclass(frozen=True)
class Format:
    """A clip's container: `name` is its `metadata.format`, its file extension and its key
    in `metadata.sizes`."""

    name: str
    media_type: str


MP4 = Format("mp4", "video/mp4")
WEBM = Format("webm", "video/webm")
FORMATS = {f.name: f for f in (MP4, WEBM)}


@dataclass(frozen=True)
class Timeline:
    """How one kind of timeline is stored and what it gives."""

    init: Kind | None  # what its init segment is, if it has one
    piece: Kind  # what each of its segments is
    clips: Format
    hls: bool  # whether HLS playback can carry it


TIMELINES = {
    "ts": Timeline(None, "ts", MP4, hls=True),
    "fmp4": Timeline("init", "fragment", MP4, hls=True),
    "webm": Timeline("webm", "cluster", WEBM, hls=False),
}


def timeline(kind: str) -> Timeline:
    """What a broadcast of ``kind`` holds (ValueError for a kind no code writes)."""
    try:
        return TIMELINES[kind]
    except KeyError:
        raise ValueError(f"unknown timeline kind {kind!r}") from None


def of_asset(metadata: dict[str, Any]) -> Format:
    """The format of a complete asset's file, from its `metadata` (the probe of the file)."""
    return FORMATS.get(str(metadata.get("format")), MP4)
