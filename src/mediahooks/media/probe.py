"""What a media file holds, as the asset's `metadata` says it (PyAV): its format, whole-second
duration, sizes and tracks. Top-level and picklable, like the cutter: the media worker runs it in
its process pool right after a cut.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

import av
import av.container
from av.audio.stream import AudioStream
from av.stream import Stream
from av.video.stream import VideoStream

from mediahooks.errors import MediahooksError


class MediaError(MediahooksError):
    """The media cannot be used; the message says which file and why, for the asset's `error`."""


def probe(path: str) -> dict[str, Any]:
    """The asset `metadata` of a media file as the platform has it: `format`, `duration`
    (whole seconds), `sizes` (bytes of each file, by kind: the media under its format's name,
    `thumbnails` once there are any), `tracks` (integers where the platform has integers:
    `framerate` rounded), `thumbnails` (filled with signed links when the asset is read)."""
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"{os.path.basename(path)} is not readable media: {exc}") from None
    with container:
        streams = sorted(container.streams.video + container.streams.audio, key=_index)
        missing = [s.index for s in streams if not s.bit_rate]
        rates = _measured_bit_rates(container, missing) if missing else {}
        name = _format_name(container)
        return {
            "format": name,
            "duration": round((container.duration or 0) / av.time_base),
            "sizes": {name: os.path.getsize(path)},
            "tracks": [_track(s, rates.get(s.index, s.bit_rate or 0)) for s in streams],
            "thumbnails": [],
        }


def time_base(stream: Stream) -> Fraction:
    if stream.time_base is None:
        raise MediaError(f"stream {stream.index} has no time base")
    return stream.time_base


def _format_name(container: av.container.InputContainer) -> str:
    """The short name users know: "mp4" rather than the demuxer's "mov,mp4,m4a,3gp,3g2,mj2"."""
    names = container.format.name.split(",")
    if "mp4" in names:
        return "mov" if container.metadata.get("major_brand", "").strip() == "qt" else "mp4"
    if "webm" in names:
        codecs = {s.codec_context.name for s in container.streams}
        return "webm" if codecs <= {"vp8", "vp9", "av1", "opus", "vorbis"} else "mkv"
    return names[0]


def _index(stream: Stream) -> int:
    return stream.index


def _track(stream: VideoStream | AudioStream, bit_rate: int) -> dict[str, Any]:
    if isinstance(stream, VideoStream):
        video = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        return {
            "type": "video",
            "codec": video.name,
            "bitrate": bit_rate,
            "width": video.width,
            "height": video.height,
            "framerate": round(rate) if rate else 0,
        }
    audio = stream.codec_context
    return {
        "type": "audio",
        "codec": audio.name,
        "bitrate": bit_rate,
        "channels": audio.channels,
        "samplerate": audio.sample_rate,
    }


def _measured_bit_rates(
    container: av.container.InputContainer, indexes: list[int]
) -> dict[int, int]:
    """Bits per second from the packets themselves, for containers that do not state a rate."""
    sizes = dict.fromkeys(indexes, 0)
    spans: dict[int, tuple[int, int]] = {}
    for packet in container.demux([container.streams[i] for i in indexes]):
        if packet.dts is None:
            continue
        index = packet.stream_index
        sizes[index] += packet.size
        low, high = spans.get(index, (packet.dts, packet.dts))
        spans[index] = (min(low, packet.dts), max(high, packet.dts + (packet.duration or 0)))
    rates = {}
    for index, (low, high) in spans.items():
        seconds = (high - low) * time_base(container.streams[index])
        rates[index] = round(sizes[index] * 8 / seconds) if seconds else 0
    return rates
