"""FLV, the container RTMP's audio, video and data messages become for the demuxer (Adobe's
"Video File Format Specification" v10, annex E). An RTMP message body is exactly an FLV tag's
body, so this is framing only. Pure.
"""

from __future__ import annotations

AUDIO, VIDEO, SCRIPT = 8, 9, 18
_HAS_AUDIO, _HAS_VIDEO = 0x04, 0x01
MAX_BODY = 0xFFFFFF  # a tag's DataSize has three bytes


def header() -> bytes:
    """The file header (E.2), saying audio and video may follow, and PreviousTagSize0."""
    return b"FLV\x01" + bytes([_HAS_AUDIO | _HAS_VIDEO]) + (9).to_bytes(4, "big") + b"\0\0\0\0"


def tag(kind: int, timestamp_ms: int, body: bytes) -> bytes:
    """One tag (E.4.1) and the PreviousTagSize after it. The timestamp's 32 bits are split: the
    low 24 first, then the high 8 (TimestampExtended)."""
    if len(body) > MAX_BODY:
        raise ValueError(f"an FLV tag holds at most {MAX_BODY} bytes, not {len(body)}")
    ts = timestamp_ms & 0xFFFFFFFF
    head = (
        bytes([kind])
        + len(body).to_bytes(3, "big")
        + (ts & 0xFFFFFF).to_bytes(3, "big")
        + bytes([ts >> 24])
        + b"\0\0\0"  # StreamID, always 0
    )
    return head + body + (11 + len(body)).to_bytes(4, "big")
