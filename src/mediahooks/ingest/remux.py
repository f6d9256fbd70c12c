"""The live path's thread side: a publisher's container bytes in, MPEG-TS segment files out.

One thread per publisher, because PyAV's demuxer blocks while it waits for bytes. Packets are
copied, never decoded: a segment is a fresh MPEG-TS muxer fed the packets from one cut keyframe
to the next, so each file starts with its tables and a keyframe, and the segments of a broadcast
share one clock (the cutter reads them back to back, as it reads HLS segments).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, TypeAlias

import av
import av.container
from av.packet import Packet as _AvPacket
from av.stream import Stream

from mediahooks.clock import now_ms
from mediahooks.ingest.timing import TARGET_SECONDS, Arrivals, Cuts, WallClock

log = logging.getLogger("mediahooks.ingest")

# What a door feeds the live path: FLV or MPEG-TS are remuxed here; live WebM is split
# (`webm_pieces`).
Container = Literal["flv", "mpegts", "webm"]
Packet: TypeAlias = "_AvPacket[Stream]"

# Codecs a segment may carry: what HLS players, the cutter's MP4 and browsers all take.
VIDEO_CODECS = {"h264"}
AUDIO_CODECS = {"aac"}
# The demuxer reads this much before handing out packets, to find every stream; the packets it
# reads meanwhile are not lost, only delayed.
_PROBE = {"analyzeduration": "2000000", "probesize": "2000000"}
_READ_BUFFER = 64 * 1024
# A segment's first timestamp is at least this: each segment has its own muxer, which would
# shift a negative first timestamp (audio a little ahead of the first keyframe) on its own and
# break the one clock between segments.
_TIMELINE_START = Fraction(1)
_TS_OPTIONS = {"mpegts_flags": "initial_discontinuity"}


@dataclass(frozen=True)
class Piece:
    """A segment file written to disk, timed on the wall clock."""

    filename: str
    path: Path
    size: int
    start_ms: int
    duration_ms: int
    init: bool = False  # the broadcast's init segment (WebM's header), not media


class Pipe:
    """Container bytes from the event loop to the demuxer's thread, as a read-only file.

    Bounded: when the thread falls behind, `put` waits without blocking the loop, the door
    stops reading its socket and the publisher's TCP window fills (back-pressure). Once closed,
    `put` drops its bytes and reading drains what is queued, then ends.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, max_chunks: int = 512) -> None:
        self.arrivals = Arrivals()
        self._loop = loop
        self._limit = max_chunks
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._waiting = False  # the loop waits for room
        self._space = asyncio.Event()
        self._current = memoryview(b"")
        self._offset = 0

    async def put(self, data: bytes) -> None:
        arrived = now_ms()
        while True:
            with self._cond:
                if self._closed:
                    return
                if len(self._chunks) < self._limit:
                    self._chunks.append((data, arrived))
                    self._cond.notify()
                    return
                self._waiting = True
                self._space.clear()
            await self._space.wait()

    def close(self) -> None:
        """No more input (either side may say so)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._wake()

    def read(self, size: int) -> bytes:
        """The demuxer's read (in its thread): blocks until bytes come; b"" at the end."""
        while not self._current:
            with self._cond:
                while not self._chunks and not self._closed:
                    self._cond.wait()
                if not self._chunks:
                    return b""
                data, arrived = self._chunks.popleft()
            self._wake()
            self.arrivals.add(self._offset, arrived)
            self._current = memoryview(data)
        out = self._current[:size]
        self._current = self._current[size:]
        self._offset += len(out)
        return bytes(out)

    def _wake(self) -> None:
        with self._cond:
            waiting, self._waiting = self._waiting, False
        if waiting:
            # The loop may be gone (the process is ending): then nobody waits any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._space.set)


class Remuxer:
    """Demux one publisher's stream and write its segments; `run` is the thread's body.

    `deliver` is called (in the thread) with each segment written, then with None at the end.
    `failed` says why the media was refused or could not be read.
    """

    def __init__(
        self,
        pipe: Pipe,
        container: Container,
        directory: Path,
        deliver: Callable[[Piece | None], None],
        target: Fraction = TARGET_SECONDS,
    ) -> None:
        self.pipe = pipe
        self.container = container
        self.directory = directory
        self.deliver = deliver
        self.failed: str | None = None
        self._cuts = Cuts(target)
        self._clock: WallClock | None = None
        self._shift: dict[int, int] = {}  # per stream: ticks added to every timestamp
        self._last_dts: dict[int, int] = {}
        self._segment: _Segment | None = None
        self._video_end = Fraction(0)
        self._count = 0

    def run(self) -> None:
        try:
            self._demux()
        except av.FFmpegError as exc:
            self.failed = f"the {self.container.upper()} stream cannot be read: {exc}"
        except Exception as exc:
            log.exception("live remux failed")
            self.failed = f"the stream could not be segmented: {exc}"
        finally:
            self.pipe.close()  # a refused stream is read no further
            try:
                if self._segment is not None:
                    self._close_segment(self._video_end)
            except Exception:
                log.exception("the last segment could not be written")
            self.deliver(None)

    def _demux(self) -> None:
        options = dict(_PROBE)
        source = av.open(
            self.pipe, "r", format=self.container, options=options, buffer_size=_READ_BUFFER
        )
        with source:
            video, audio = _pick(source)
            if isinstance(video, str):
                self.failed = video
                return
            if isinstance(audio, str):
                self.failed = audio
                return
            streams = [video] if audio is None else [video, audio]
            self.directory.mkdir(parents=True, exist_ok=True)
            for packet in source.demux(streams):
                if packet.dts is None or not packet.size:
                    continue  # the demuxer's end-of-stream markers
                if packet.stream is video:
                    self._video(packet, streams)
                elif self._segment is not None:  # audio before the first keyframe is dropped
                    self._mux(packet)

    def _video(self, packet: Packet, streams: list[Stream]) -> None:
        time = _time(packet)
        duration = packet.duration * packet.time_base if packet.duration else Fraction(0)
        self._video_end = max(self._video_end, time + duration)
        if self._cuts.starts(time, packet.is_keyframe):
            if self._clock is None:
                first_wall = self.pipe.arrivals.at(packet.pos, now_ms())
                self.pipe.arrivals.forget()
                self._clock = WallClock(time, first_wall)
                shift = max(Fraction(0), _TIMELINE_START - time)
                for stream in streams:
                    assert stream.time_base is not None
                    self._shift[stream.index] = round(shift / stream.time_base)
            if self._segment is not None:
                self._close_segment(time)
            self._segment = _Segment(streams, time)
        if self._segment is not None:
            self._mux(packet)

    def _mux(self, packet: Packet) -> None:
        assert self._segment is not None and packet.dts is not None
        index = packet.stream_index
        shift = self._shift[index]
        dts = packet.dts + shift
        # A muxer takes only rising decode times; a publisher's glitch costs one packet, not
        # the stream.
        if dts < 0 or dts <= self._last_dts.get(index, -1):
            return
        self._last_dts[index] = dts
        pts = packet.pts + shift if packet.pts is not None else dts
        packet.dts, packet.pts = dts, pts
        self._segment.mux(packet)

    def _close_segment(self, end: Fraction) -> None:
        assert self._segment is not None and self._clock is not None
        segment, self._segment = self._segment, None
        data = segment.close()
        start = segment.start
        name = f"index{self._count}.ts"
        self._count += 1
        path = self.directory / name
        path.write_bytes(data)
        start_ms = self._clock.at(start)
        duration_ms = max(self._clock.at(max(end, start)) - start_ms, 1)
        self.deliver(Piece(name, path, len(data), start_ms, duration_ms))


class _Segment:
    """One MPEG-TS file being written in memory: the streams' parameters copied, packets
    muxed as they come."""

    def __init__(self, sources: list[Stream], start: Fraction) -> None:
        self.start = start
        self._buffer = io.BytesIO()
        self._out = av.open(self._buffer, "w", format="mpegts", options=_TS_OPTIONS)
        self._targets = {s.index: self._out.add_stream_from_template(s) for s in sources}

    def mux(self, packet: Packet) -> None:
        packet.stream = self._targets[packet.stream_index]
        self._out.mux(packet)

    def close(self) -> bytes:
        self._out.close()
        return self._buffer.getvalue()


def _pick(
    source: av.container.InputContainer,
) -> tuple[Stream | str, Stream | str | None]:
    """The stream's video and audio, or the reason (str) it is refused."""
    if not source.streams.video:
        return "the stream carries no video: send H.264 video (and AAC audio)", None
    video: Stream = source.streams.video[0]
    if video.codec_context.name not in VIDEO_CODECS:
        name = video.codec_context.name
        return f"the video codec is {name}: send H.264 (x264, profile main or high)", None
    if not source.streams.audio:
        return video, None
    audio: Stream = source.streams.audio[0]
    if audio.codec_context.name not in AUDIO_CODECS:
        return video, f"the audio codec is {audio.codec_context.name}: send AAC (or no audio)"
    return video, audio


def _time(packet: Packet) -> Fraction:
    pts = packet.pts if packet.pts is not None else packet.dts
    assert pts is not None
    return pts * packet.time_base
