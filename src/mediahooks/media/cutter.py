"""Cut a clip out of a timeline's segments into one MP4 (or WebM, for a WebM timeline: VP8 and
Opus), with PyAV.

The copy is a remux: packets move from the segments to the clip untouched, so a clip costs
reading and writing its bytes, never decoding or encoding them. That is also why a clip starts on
a keyframe: the first picture of an H.264 (or VP8) stream has to be one. What a timeline's
segments are and which container its clips get is `containers.timeline`'s answer; what a
written file holds (the asset's `metadata`) is `probe`'s; how the segment files are checked and
read as one input is `cut_input`'s.

Every public function is top-level and takes and returns picklable values: the media worker runs
them in a process pool.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import av
import av.container
from av.packet import Packet
from av.stream import Stream

from mediahooks.media import containers, stills
from mediahooks.media.cut_input import Files
from mediahooks.media.probe import MediaError, probe, time_base

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Segment:
    path: str
    start_ms: int  # wall-clock start, epoch ms
    duration_ms: int


@dataclass(frozen=True)
class CutResult:
    start_ms: int  # where the clip really starts: the keyframe at or before the requested start
    stop_ms: int
    metadata: dict[str, Any]


# PyAV's Packet is generic only in its type stubs.
_Packet: TypeAlias = "Packet[Stream]"
_S = TypeVar("_S", bound=Stream)


def cut(
    segments: list[Segment],
    start_ms: int,
    stop_ms: int,
    out_path: str,
    init_path: str | None = None,
    poster_path: str | None = None,
    kind: str | None = None,
) -> CutResult:
    """Remux `segments` (consecutive MPEG-TS segments, or fMP4 fragments or WebM clusters
    after `init_path`; `kind` is the timeline's, by default "ts", or "fmp4" with an init
    segment) into one file at `out_path` covering `start_ms`..`stop_ms` (epoch ms), snapped back
    to a keyframe, with timestamps from 0: a faststart MP4, or WebM for a WebM timeline. With
    `poster_path`, its stills as JPEGs: its first picture there, and `stills.ASSET_STILLS - 1`
    more along it beside it.

    The first segment's `start_ms` is taken to be the wall-clock time of its first picture.
    Both files appear complete or not at all.
    """
    if not segments:
        raise MediaError("no segments to cut from")
    if stop_ms <= start_ms:
        raise MediaError(f"the clip's stop {stop_ms} is not after its start {start_ms}")
    timeline = containers.timeline(kind or ("ts" if init_path is None else "fmp4"))
    files = Files([s.path for s in segments], init_path, timeline)
    written = [_temporary_beside(out_path)]
    try:
        offset = _remux(
            files, segments[0].start_ms, start_ms, stop_ms, written[0], timeline.clips.name
        )
        metadata = probe(written[0])
        seconds = _seconds(written[0])
        if poster_path is not None:
            temporary = _write_stills(written[0], poster_path)
            written += temporary
            metadata["sizes"]["thumbnails"] = sum(os.path.getsize(t) for t in temporary)
            for index, path in enumerate(temporary):
                os.replace(path, stills.still_path(poster_path, index))
        os.replace(written[0], out_path)
    except BaseException:
        for path in written:
            with suppress(FileNotFoundError):
                os.unlink(path)
        raise
    clip_start = segments[0].start_ms + round(offset * 1000)
    return CutResult(clip_start, clip_start + round(seconds * 1000), metadata)


def _seconds(path: str) -> Fraction:
    """The exact length of a media file, which the clip's stop time is computed from."""
    with av.open(path) as container:
        return Fraction(container.duration or 0, av.time_base)


def _remux(
    files: Files, origin_ms: int, start_ms: int, stop_ms: int, out: str, format: str
) -> Fraction:
    """Copy the packets of the clip into a file of ``format`` (mp4 or webm) at `out`. Return
    where the clip starts, in seconds after the first segment's start (`origin_ms`).
    """
    with files.open() as source:
        streams: list[Stream] = [
            s for s in (_first(source.streams.video), _first(source.streams.audio)) if s
        ]
        if not streams:
            raise MediaError("the segments hold neither video nor audio")
        reader = _Reader(source, streams, files)
        window = _Window(
            streams, Fraction(start_ms - origin_ms, 1000), Fraction(stop_ms - origin_ms, 1000)
        )
        opening = window.find_start(reader)
        _write(out, format, streams, window.clip(itertools.chain(opening, reader)), files)
    return window.start - window.origin


# MP4 faststart: the index first, so players start before the download ends. WebM: the cues
# go after the clusters (FFmpeg cannot put them first without knowing their size).
_OUTPUT_OPTIONS = {"mp4": {"movflags": "+faststart"}, "webm": {}}


def _write(
    out: str, format: str, streams: list[Stream], packets: Iterator[_Packet], files: Files
) -> None:
    """Mux `packets` into a file of ``format`` with one stream per input stream, parameters
    copied.
    """
    options = _OUTPUT_OPTIONS[format]
    with av.open(out, "w", format=format, container_options=options) as output:
        targets = {s.index: output.add_stream_from_template(s) for s in streams}
        for packet in packets:
            packet.stream = targets[packet.stream_index]
            try:
                output.mux(packet)
            except av.FFmpegError as exc:
                name = files.name_at(packet.pos)
                raise MediaError(
                    f"segment {name} cannot be put in {format.upper()}: {exc.strerror}"
                ) from None


class _Reader:
    """The media packets of the chosen streams in decode order, remembering where in the input
    the last one came from so that an error can name its file.
    """

    def __init__(
        self, source: av.container.InputContainer, streams: list[Stream], files: Files
    ) -> None:
        self.packets = source.demux(streams)
        self.files = files
        self.position: int | None = 0
        self.last = {s.index: -(2**63) for s in streams}

    def __iter__(self) -> Iterator[_Packet]:
        return self

    def __next__(self) -> _Packet:
        while True:
            try:
                packet = next(self.packets)
            except av.FFmpegError as exc:
                name = self.files.name_at(self.position)
                raise MediaError(f"segment {name} is not readable media: {exc}") from None
            # Packets without a timestamp are the demuxer's end-of-stream markers.
            if packet.dts is None or not packet.size:
                continue
            self.position = packet.pos
            # Segments of another broadcast (or stream) in the list: the timestamps start over,
            # which neither the keyframe search nor MP4 (rising decode times) can take.
            if packet.dts <= self.last[packet.stream_index]:
                raise MediaError(
                    f"segment {self.files.name_at(packet.pos)} does not follow on from the "
                    "segments before it: its timestamps go back"
                )
            self.last[packet.stream_index] = packet.dts
            return packet


class _Window:
    """Which packets, in decode order, belong to the clip; all bounds in each stream's own
    time base, so the per-packet work is integer comparisons.

    Wall-clock times become media times through the first segment's first anchor packet (its
    first video packet, else audio): ffmpeg's hls muxer dates a segment by the keyframe that
    opens it, and audio muxed a little ahead of that keyframe must not shift the clip.

    The clip starts on the anchor stream's last keyframe at or before the requested start, and
    that is only known once the anchor has passed the start: the packets from the latest
    candidate keyframe on wait in `find_start`. The anchor stops at the first packet whose decode
    time reaches the stop, so every frame kept has the frames it refers to; the other streams
    stop on presentation time.
    """

    def __init__(self, streams: list[Stream], start: Fraction, stop: Fraction) -> None:
        self.anchor = streams[0].index
        self.time_bases = {s.index: time_base(s) for s in streams}
        self.span = (start, stop)  # seconds after the origin
        self.origin = self.start = Fraction(0)  # media seconds
        self.wanted = 0
        self.stops: dict[int, int] = {}
        self.offsets: dict[int, int] = {}

    def find_start(self, packets: Iterator[_Packet]) -> list[_Packet]:
        """Read up to the point where the opening keyframe is certain; return the packets from
        it on. When the start precedes all media, the clip starts on the first keyframe.
        """
        keyframe: _Packet | None = None
        waiting: list[_Packet] = []
        end = 0
        for packet in packets:
            is_anchor = packet.stream_index == self.anchor
            if is_anchor:
                if not self.stops:
                    self._set_origin(packet)
                end = _pts(packet) + (packet.duration or 0)
                if packet.is_keyframe and (keyframe is None or _pts(packet) <= self.wanted):
                    keyframe, waiting = packet, []
            if keyframe is not None:
                waiting.append(packet)
                # Later keyframes are shown after this packet is decoded, so after the start.
                if is_anchor and _dts(packet) > self.wanted:
                    break
        else:
            if not self.stops:
                raise MediaError("the segments hold no media packets")
            if keyframe is not None and end <= self.wanted:
                raise MediaError("the clip starts after the end of the given segments")
        if keyframe is None:
            raise MediaError("the segments hold no keyframe to start a clip on")
        self.start = _pts(keyframe) * self.time_bases[self.anchor]
        self.offsets = {i: _ticks(self.start, base) for i, base in self.time_bases.items()}
        return waiting

    def clip(self, packets: Iterator[_Packet]) -> Iterator[_Packet]:
        """The clip's packets, rebased so that the opening keyframe is shown at 0."""
        running = set(self.stops)
        for packet in packets:
            index = packet.stream_index
            if index not in running:
                continue
            pts, dts = _pts(packet), _dts(packet)
            if (dts if index == self.anchor else pts) >= self.stops[index]:
                running.discard(index)
                if not running:
                    return
                continue
            offset = self.offsets[index]
            # Audio muxed ahead of the keyframe, and frames of an open GOP that refer back.
            if pts < offset:
                continue
            packet.pts, packet.dts = pts - offset, dts - offset
            yield packet

    def _set_origin(self, packet: _Packet) -> None:
        self.origin = _pts(packet) * self.time_bases[self.anchor]
        start, stop = self.span
        self.wanted = _ticks(self.origin + start, self.time_bases[self.anchor])
        self.stops = {i: _ticks(self.origin + stop, base) for i, base in self.time_bases.items()}


def _first(streams: tuple[_S, ...]) -> _S | None:
    return streams[0] if streams else None


def _dts(packet: _Packet) -> int:
    # Only packets with a decode time get past the reader.
    assert packet.dts is not None
    return packet.dts


def _pts(packet: _Packet) -> int:
    return packet.pts if packet.pts is not None else _dts(packet)


def _ticks(seconds: Fraction, time_base: Fraction) -> int:
    return round(seconds / time_base)


def _temporary_beside(path: str) -> str:
    # Absolute: FFmpeg would take a relative "a:b.mp4" for a URL with protocol "a".
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.part")


def _write_stills(video_path: str, poster_path: str) -> list[str]:
    """The asset's stills as JPEGs beside the poster's path, decoded from the written file
    itself; returns the temporary files written, in still order."""
    try:
        frames = stills.pictures_along(video_path, stills.ASSET_STILLS)
    except stills.NoPicture as exc:
        raise MediaError(f"the clip has no picture to take stills from: {exc}") from None
    written = []
    for index, frame in enumerate(frames):
        path = _temporary_beside(stills.still_path(poster_path, index))
        written.append(path)
        with open(path, "wb") as file:
            file.write(stills.jpeg(frame))
    return written
