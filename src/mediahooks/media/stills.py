"""Still pictures as JPEG: an asset's poster, a live stream's thumbnail, the test picture.

Each is one picture decoded with PyAV and encoded at the source's own size (no rescaling).
A live thumbnail decodes the first keyframe of one segment and nothing else.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
from av.video.frame import VideoFrame

from mediahooks.errors import NotFound

_QP2LAMBDA = 118  # FFmpeg's FF_QP2LAMBDA: quantizer to lambda units


class NoPicture(NotFound):
    """The media holds no picture to take (no video, or none that decodes)."""


def jpeg(frame: VideoFrame) -> bytes:
    """One picture as a JPEG, at its own size."""
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = frame.width, frame.height
    # Full-range YUV is what JPEG means; the encoder refuses limited range without a waiver.
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 1)
    # A fixed quality (ffmpeg's -q:v 3, what thumbnailers use), not a bit budget per picture.
    encoder.qscale = True
    encoder.global_quality = 3 * _QP2LAMBDA
    picture = frame.reformat(format="yuvj420p")
    return b"".join(bytes(p) for p in [*encoder.encode(picture), *encoder.encode(None)])


def first_picture(source: str | io.BytesIO) -> VideoFrame:
    """The first picture of a media file: its first video keyframe, decoded alone."""
    try:
        container = av.open(source, "r")
    except (av.FFmpegError, OSError) as exc:
        raise NoPicture(f"not readable media: {exc}") from None
    with container:
        if not container.streams.video:
            raise NoPicture("the media has no video")
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                if packet.dts is None or not packet.is_keyframe:
                    continue
                for frame in stream.codec_context.decode(packet):
                    return frame
                # A decoder with delay gives the picture once told the input has ended.
                for frame in stream.codec_context.decode(None):
                    return frame
        except av.FFmpegError as exc:
            raise NoPicture(f"the picture does not decode: {exc}") from None
    raise NoPicture("the media has no keyframe")


# Stills of an asset: its first picture (the poster) and pictures a third and two thirds in.
ASSET_STILLS = 3


def still_path(poster_path: str, index: int) -> str:
    """Where an asset's still ``index`` is: the poster itself for 0, then `<id>.<index>.jpg`."""
    return poster_path if index == 0 else poster_path.removesuffix(".jpg") + f".{index}.jpg"


def pictures_along(path: str, count: int) -> list[VideoFrame]:
    """``count`` pictures spread along a media file: its first, then the keyframes at or before
    each further ``i / count`` of its length (the first again where none decodes)."""
    first = first_picture(path)
    frames = [first]
    with av.open(path, "r") as container:
        stream = container.streams.video[0]
        length = Fraction(container.duration or 0, av.time_base)
        for index in range(1, count):
            frames.append(_keyframe_at(container, stream, length * index / count) or first)
    return frames


def _keyframe_at(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, at: Fraction
) -> VideoFrame | None:
    if stream.time_base is None:
        return None
    try:
        container.seek(int(at / stream.time_base), stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            for frame in stream.codec_context.decode(packet):
                return frame
    except av.FFmpegError:
        return None
    return None


def segment_thumbnail(segment: bytes, init: bytes | None = None) -> bytes:
    """A JPEG of the first keyframe of one timeline segment (an fMP4 fragment is read after
    its init segment)."""
    return jpeg(first_picture(io.BytesIO((init or b"") + segment)))


def test_picture(width: int = 640, height: int = 360) -> bytes:
    """The picture a `Thumbnail` test event carries: grey bars, brighter to the right."""
    frame = VideoFrame(width, height, "yuv420p")
    luma = bytes(16 + (x * 8 // width) * 28 for x in range(width))
    planes = frame.planes
    planes[0].update(_rows(luma, height, planes[0].line_size))
    chroma = bytes([128]) * (width // 2)
    for plane in planes[1:]:
        plane.update(_rows(chroma, height // 2, plane.line_size))
    return jpeg(frame)


def _rows(row: bytes, count: int, line_size: int) -> bytes:
    return (row + bytes(line_size - len(row))) * count
