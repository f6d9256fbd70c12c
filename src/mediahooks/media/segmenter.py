"""Encode raw frames to H.264 + AAC and cut them into HLS segments: MPEG-TS files, or fMP4 (one
init segment, then fragments that follow it).

Segments start on a keyframe at every multiple of the segment length: the encoder is told to
make those frames keyframes, and the cut is made there, so each segment can be decoded alone.
"""

from __future__ import annotations

import io
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Generic, Literal, TypeAlias, TypeVar

import av
from av.audio.stream import AudioStream
from av.codec.context import Flags
from av.container import OutputContainer
from av.packet import Packet as _AvPacket
from av.stream import Stream
from av.video.frame import PictureType
from av.video.stream import VideoStream

SegmentKind = Literal["ts", "fmp4"]

INIT_NAME = "init.mp4"
SAMPLE_RATE = 48000
AUDIO_FRAME_SAMPLES = 1024  # what the AAC encoder takes per frame

# Each MPEG-TS segment gets its own muxer, which would shift a segment whose first timestamp is
# negative (the AAC encoder's priming frame) on its own and break the timeline between segments;
# starting the timeline here keeps every timestamp positive and every segment on one clock.
_TS_TIMELINE_START = Fraction(1)
# One fragment per video keyframe; the fragments are then grouped into segments. The header
# waits for the first fragment (delay_moov, as ffmpeg's hls muxer does) so that it can record
# where each track starts: AAC's priming samples come before the first picture.
_FMP4_MOVFLAGS = "frag_keyframe+delay_moov+default_base_moof"

T = TypeVar("T")
# PyAV types its packets by stream only in its stubs.
Packet: TypeAlias = "_AvPacket[Stream]"


@dataclass(frozen=True)
class SegmentFile:
    """One file of an HLS stream, as a publisher sends it."""

    name: str
    data: bytes
    duration: float  # seconds of media; 0 for the fMP4 init segment

    @property
    def is_init(self) -> bool:
        return self.name == INIT_NAME


def starts_segment(frame_index: int, fps: int, segment_seconds: Fraction) -> bool:
    """Whether video frame `frame_index` is the first one of a segment (and must be a keyframe)."""
    if frame_index == 0:
        return True
    return _slot(Fraction(frame_index, fps), segment_seconds) != _slot(
        Fraction(frame_index - 1, fps), segment_seconds
    )


def _slot(time: Fraction, segment_seconds: Fraction) -> int:
    return int(time // segment_seconds)


class Boundaries:
    """Decides, keyframe by keyframe, where segments start: at the first keyframe of each
    segment-length slot of the timeline."""

    def __init__(self, segment_seconds: Fraction) -> None:
        self._segment_seconds = segment_seconds
        self._current: Fraction | None = None

    def starts(self, time: Fraction, keyframe: bool) -> bool:
        """Whether the video packet at `time` starts a segment (the first one always does)."""
        if self._current is not None and not (
            keyframe
            and _slot(time, self._segment_seconds) > _slot(self._current, self._segment_seconds)
        ):
            return False
        self._current = time
        return True


@dataclass
class Cut(Generic[T]):
    """The packets of one segment: video from `start` (a keyframe) to `end`, and the audio of
    that span."""

    start: Fraction
    end: Fraction | None = None
    items: list[T] = field(default_factory=list)


class Cutter(Generic[T]):
    """Groups encoded packets into segments, in the order they leave the encoders.

    Audio leaves its encoder a little after the video of the same instant, so a segment is
    complete only once audio past its end has been seen (or the stream has ended).
    """

    def __init__(self, segment_seconds: Fraction) -> None:
        self._boundaries = Boundaries(segment_seconds)
        self._open: deque[Cut[T]] = deque()
        self._audio: deque[tuple[Fraction, T]] = deque()

    def add_video(self, item: T, time: Fraction, keyframe: bool) -> list[Cut[T]]:
        if self._boundaries.starts(time, keyframe):
            if self._open:
                self._open[-1].end = time
            self._open.append(Cut(start=time))
        self._open[-1].items.append(item)
        return self._complete()

    def add_audio(self, item: T, time: Fraction) -> list[Cut[T]]:
        self._audio.append((time, item))
        return self._complete()

    def finish(self, end: Fraction) -> list[Cut[T]]:
        """The remaining segments; the last one ends at `end` and takes all remaining audio."""
        if not self._open:
            return []
        self._open[-1].end = end
        done = list(self._open)
        self._open.clear()
        for cut in done[:-1]:
            assert cut.end is not None
            while self._audio and self._audio[0][0] < cut.end:
                cut.items.append(self._audio.popleft()[1])
        done[-1].items.extend(item for _, item in self._audio)
        self._audio.clear()
        return done

    def _complete(self) -> list[Cut[T]]:
        done: list[Cut[T]] = []
        while self._open and self._open[0].end is not None:
            first, end = self._open[0], self._open[0].end
            while self._audio and self._audio[0][0] < end:
                first.items.append(self._audio.popleft()[1])
            if not self._audio:
                break  # audio of this span may still be on its way
            done.append(self._open.popleft())
        return done


class Encoders:
    """libx264 + AAC encoders for one stream, with keyframes where segments start."""

    def __init__(self, width: int, height: int, fps: int, segment_seconds: Fraction) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"width and height must be even, not {width}x{height}")
        self.fps = fps
        self.segment_seconds = segment_seconds
        # The encoders live in a container that writes nothing: its streams are the templates
        # the real muxers copy their codec parameters (SPS/PPS, AAC config) from.
        self._holder = av.open("null", "w", format="null")
        self.video = self._holder.add_stream("libx264", rate=fps, options=_x264_options(fps))
        self.video.width, self.video.height, self.video.pix_fmt = width, height, "yuv420p"
        self.video.codec_context.time_base = Fraction(1, fps)
        self.audio = self._holder.add_stream("aac", rate=SAMPLE_RATE)
        self.audio.codec_context.layout = "stereo"
        self.audio.codec_context.format = "fltp"
        for stream in (self.video, self.audio):
            # Parameter sets out of band: MP4 needs them in its header, and the MPEG-TS muxer
            # puts them back in front of every keyframe.
            stream.codec_context.flags |= Flags.global_header
        self._holder.start_encoding()

    def encode(self, frame: av.VideoFrame | av.AudioFrame | None) -> list[Packet]:
        """Packets for one frame; `None` drains both encoders at the end of the stream."""
        if frame is None:
            return [*self.video.encode(None), *self.audio.encode(None)]
        if isinstance(frame, av.AudioFrame):
            return list(self.audio.encode(frame))
        # Always set: a decoded picture brings its old type along, which must not decide here.
        key = frame.pts is not None and starts_segment(frame.pts, self.fps, self.segment_seconds)
        frame.pict_type = PictureType.I if key else PictureType.NONE
        return list(self.video.encode(frame))

    def close(self) -> None:
        self._holder.close()


def _x264_options(fps: int) -> dict[str, str]:
    # One keyframe a second, none at scene changes (cuts stay predictable), and no frame
    # reordering or look-ahead, so a segment leaves the encoder as soon as it is complete.
    return {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "forced-idr": "1",
        "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0",
    }


def encode_segments(
    frames: Iterable[av.VideoFrame | av.AudioFrame],
    kind: SegmentKind,
    width: int,
    height: int,
    fps: int,
    segment_seconds: float,
) -> Iterator[SegmentFile]:
    """Segments of `frames` (video pts in 1/fps, audio pts in samples of 1024-sample stereo fltp
    frames at 48 kHz), each yielded as soon as it is complete."""
    length = Fraction(segment_seconds).limit_denominator(1000)
    if length <= 0:
        raise ValueError("segment_seconds must be positive")
    encoders = Encoders(width, height, fps, length)
    try:
        muxer = _TsMuxer(encoders) if kind == "ts" else _Fmp4Muxer(encoders)
        for frame in _with_end(frames):
            for packet in encoders.encode(frame):
                yield from muxer.add(packet)
        yield from muxer.finish()
    finally:
        encoders.close()


def _with_end(
    frames: Iterable[av.VideoFrame | av.AudioFrame],
) -> Iterator[av.VideoFrame | av.AudioFrame | None]:
    yield from frames
    yield None


def _time(packet: Packet) -> Fraction:
    assert packet.pts is not None
    return packet.pts * packet.time_base


class _TsMuxer:
    """Each segment its own MPEG-TS file, starting with its tables and a keyframe."""

    def __init__(self, encoders: Encoders) -> None:
        self._encoders = encoders
        self._cutter: Cutter[Packet] = Cutter(encoders.segment_seconds)
        self._video_end = Fraction(0)
        self._count = 0

    def add(self, packet: Packet) -> list[SegmentFile]:
        time = _time(packet)
        if packet.stream is self._encoders.video:
            self._video_end = time + Fraction(1, self._encoders.fps)
            cuts = self._cutter.add_video(packet, time, packet.is_keyframe)
        else:
            cuts = self._cutter.add_audio(packet, time)
        return [self._write(cut) for cut in cuts]

    def finish(self) -> list[SegmentFile]:
        return [self._write(cut) for cut in self._cutter.finish(self._video_end)]

    def _write(self, cut: Cut[Packet]) -> SegmentFile:
        out = io.BytesIO()
        with av.open(out, "w", format="mpegts", options=_TS_OPTIONS) as container:
            video, audio = _template_streams(container, self._encoders)
            for packet in sorted(cut.items, key=_time):
                offset = int(_TS_TIMELINE_START / packet.time_base)
                packet.pts = (packet.pts or 0) + offset
                packet.dts = (packet.dts or 0) + offset
                packet.stream = video if packet.stream is self._encoders.video else audio
                container.mux(packet)
        assert cut.end is not None
        name = f"index{self._count}.ts"
        self._count += 1
        return SegmentFile(name, out.getvalue(), float(cut.end - cut.start))


# Each segment's continuity counters restart; saying so keeps joined segments from reading as
# packet loss.
_TS_OPTIONS = {"mpegts_flags": "initial_discontinuity"}


class _Fmp4Muxer:
    """One fragmented MP4 for the whole stream, split into its header (the init segment) and
    its fragments, one per video keyframe; consecutive fragments make one segment.

    Packets go to the muxer as they are encoded: it sends a fragment out as soon as the next
    keyframe comes, so a segment is out without waiting for the one after it.
    """

    def __init__(self, encoders: Encoders) -> None:
        self._encoders = encoders
        self._boundaries = Boundaries(encoders.segment_seconds)
        self._out = _Buffer()
        self._container = av.open(
            self._out, "w", format="mp4", options={"movflags": _FMP4_MOVFLAGS}
        )
        self._video, self._audio = _template_streams(self._container, encoders)
        self._boxes = _BoxReader()
        # For each fragment still to come out of the muxer: its start, and whether it starts a
        # segment.
        self._fragments: deque[tuple[Fraction, bool]] = deque()
        self._pending = bytearray()
        self._pending_start = Fraction(0)
        self._video_end = Fraction(0)
        self._count = 0

    def add(self, packet: Packet) -> list[SegmentFile]:
        if packet.stream is self._encoders.video:
            time = _time(packet)
            if packet.is_keyframe:
                self._fragments.append((time, self._boundaries.starts(time, True)))
            self._video_end = time + Fraction(1, self._encoders.fps)
            packet.stream = self._video
        else:
            packet.stream = self._audio
        self._container.mux(packet)
        return self._collect()

    def finish(self) -> list[SegmentFile]:
        self._container.close()
        done = self._collect()
        if self._pending:
            done.append(self._segment(self._video_end))
        return done

    def _collect(self) -> list[SegmentFile]:
        done: list[SegmentFile] = []
        for kind, box in self._boxes.read(self._out.take()):
            if kind in (b"ftyp", b"moov"):
                self._pending += box
                if kind == b"moov":  # the header is whole: it is the init segment
                    done.append(SegmentFile(INIT_NAME, bytes(self._pending), 0.0))
                    self._pending.clear()
            elif kind == b"moof":
                start, starts_segment = self._fragments.popleft()
                if starts_segment:
                    if self._pending:
                        done.append(self._segment(start))
                    self._pending_start = start
                self._pending += box
            elif kind == b"mdat":
                self._pending += box
            # Anything else (the closing `mfra` index) is not part of a live stream.
        return done

    def _segment(self, end: Fraction) -> SegmentFile:
        name = f"index{self._count}.m4s"
        self._count += 1
        duration = float(end - self._pending_start)
        segment = SegmentFile(name, bytes(self._pending), duration)
        self._pending.clear()
        return segment


def _template_streams(
    container: OutputContainer, encoders: Encoders
) -> tuple[VideoStream, AudioStream]:
    return (
        container.add_stream_from_template(encoders.video),
        container.add_stream_from_template(encoders.audio),
    )


class _Buffer:
    """A write-only file for the MP4 muxer: without `seek` it writes strictly in order."""

    def __init__(self) -> None:
        self._data = bytearray()

    def write(self, data: bytes) -> int:
        self._data += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._data)
        self._data.clear()
        return data


class _BoxReader:
    """Splits a growing MP4 byte stream into whole top-level boxes."""

    def __init__(self) -> None:
        self._rest = b""

    def read(self, data: bytes) -> Iterator[tuple[bytes, bytes]]:
        buf = self._rest + data
        offset = 0
        while len(buf) - offset >= 8:
            size, kind = struct.unpack_from(">I4s", buf, offset)
            if size == 1:  # a 64-bit size follows the type
                if len(buf) - offset < 16:
                    break
                (size,) = struct.unpack_from(">Q", buf, offset + 8)
            if size < 8 or len(buf) - offset < size:
                break
            yield kind, buf[offset : offset + size]
            offset += size
        self._rest = buf[offset:]
