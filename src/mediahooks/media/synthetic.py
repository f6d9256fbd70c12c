"""Live streams to publish: a synthetic one (moving colour bars with a frame counter, and a tone
that beeps on every second), or a local media file re-encoded; both as HLS segments.
"""

from __future__ import annotations

import array
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from mediahooks.media.segmenter import (
    AUDIO_FRAME_SAMPLES,
    SAMPLE_RATE,
    SegmentFile,
    SegmentKind,
    encode_segments,
)

__all__ = ["SegmentFile", "SegmentKind", "iter_file_segments", "iter_segments"]

Frame = av.VideoFrame | av.AudioFrame

# 75% colour bars (BT.601 limited range): white, yellow, cyan, green, magenta, red, blue, black.
_BARS_YUV = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
]
_SCROLL_PX = 4  # per frame; even, so the chroma planes move by whole samples
_WHITE, _BLACK = 235, 16
# 3x5 bitmaps of the digits, one string of rows per digit.
_DIGITS = [
    "111101101101111",
    "010110010010111",
    "111001111100111",
    "111001111001111",
    "101101111001001",
    "111100111001111",
    "111100111101111",
    "111001001001001",
    "111101111101111",
    "111101111001111",
]


def iter_segments(
    seconds: float,
    kind: SegmentKind,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    segment_seconds: float = 1.0,
) -> Iterator[SegmentFile]:
    """A synthetic stream of `seconds` (`math.inf`: endless), segment by segment as produced.

    For fMP4 the first item is the init segment (duration 0)."""
    frames = _synthetic_frames(seconds, width, height, fps)
    return encode_segments(frames, kind, width, height, fps, segment_seconds)


def iter_file_segments(
    path: str | Path,
    kind: SegmentKind,
    segment_seconds: float = 1.0,
    *,
    loop: bool = False,
    seconds: float | None = None,
) -> Iterator[SegmentFile]:
    """A local media file re-encoded as a live stream, at most 1280x720, at a constant frame
    rate; a file without audio gets silence. `loop` plays it again and again; `seconds` caps the
    length."""
    with av.open(str(path)) as probe:
        if not probe.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = probe.streams.video[0]
        width, height = _fit(stream.codec_context.width, stream.codec_context.height)
        fps = _constant_rate(stream.average_rate)
    limit = math.inf if seconds is None else seconds
    frames = _file_frames(Path(path), width, height, fps, loop, limit)
    return encode_segments(frames, kind, width, height, fps, segment_seconds)


# --- the synthetic picture and sound ---------------------------------------------------------


def _synthetic_frames(seconds: float, width: int, height: int, fps: int) -> Iterator[Frame]:
    card = _TestCard(width, height)
    samples = 0
    index = 0
    while index < seconds * fps:
        yield card.frame(index, fps)
        index += 1
        # Audio up to the end of this picture, so both run side by side.
        while samples < index * SAMPLE_RATE // fps:
            yield _tone(samples)
            samples += AUDIO_FRAME_SAMPLES


class _TestCard:
    """Colour bars scrolling sideways, and the frame number in big digits: a frame shows at a
    glance how far a stream got and whether it moves."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        # Each plane's bars, twice over: a scrolled row is then one slice.
        self._rows = [_bars_row(width >> min(plane, 1), plane) * 2 for plane in range(3)]

    def frame(self, index: int, fps: int) -> av.VideoFrame:
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        offset = index * _SCROLL_PX % self.width
        for plane_index, plane in enumerate(frame.planes):
            sub = 1 if plane_index else 0  # chroma planes are half the size each way
            width, height = self.width >> sub, self.height >> sub
            line = self._rows[plane_index][offset >> sub :][:width].ljust(plane.line_size, b"\0")
            data = bytearray(line * height)
            self._draw_number(data, plane.line_size, height, index, sub)
            plane.update(bytes(data))
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        return frame

    def _draw_number(self, data: bytearray, stride: int, rows: int, number: int, sub: int) -> None:
        # Drawn in every plane: the bars' colour must not tint the box or the digits.
        text = str(number)
        scale = max(2, self.height // 40 // 2 * 2) >> sub
        left = top = scale * 2
        width, height = (len(text) * 4 + 1) * scale, 7 * scale
        if left + width > self.width >> sub or top + height > rows:
            return  # a picture too small for the number goes without
        _fill(data, stride, left, top, width, height, 128 if sub else _BLACK)
        if sub:
            return
        for position, char in enumerate(text):
            for cell, bit in enumerate(_DIGITS[int(char)]):
                if bit == "1":
                    x = left + (1 + position * 4 + cell % 3) * scale
                    y = top + (1 + cell // 3) * scale
                    _fill(data, stride, x, y, scale, scale, _WHITE)


def _bars_row(width: int, plane: int) -> bytes:
    return bytes(_BARS_YUV[x * len(_BARS_YUV) // width][plane] for x in range(width))


def _fill(data: bytearray, stride: int, x: int, y: int, w: int, h: int, value: int) -> None:
    run = bytes([value]) * w
    for row in range(y, y + h):
        data[row * stride + x : row * stride + x + w] = run


def _tone_frame(cycles: int, level: float) -> bytes:
    # A whole number of cycles per frame: every frame is the same bytes, with no phase jump.
    return array.array(
        "f",
        (
            level * math.sin(2 * math.pi * cycles * i / AUDIO_FRAME_SAMPLES)
            for i in range(AUDIO_FRAME_SAMPLES)
        ),
    ).tobytes()


_HUM = _tone_frame(10, 0.2)  # 468.75 Hz
_BEEP = _tone_frame(20, 0.4)  # 937.5 Hz, for the first tenth of each second
_SILENCE = bytes(AUDIO_FRAME_SAMPLES * 4)


def _tone(first_sample: int) -> av.AudioFrame:
    beep = first_sample % SAMPLE_RATE < SAMPLE_RATE // 10
    return _audio_frame(_BEEP if beep else _HUM, first_sample)


def _audio_frame(data: bytes, first_sample: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=AUDIO_FRAME_SAMPLES)
    for plane in frame.planes:
        plane.update(data.ljust(plane.buffer_size, b"\0"))
    frame.pts = first_sample
    frame.sample_rate = SAMPLE_RATE
    frame.time_base = Fraction(1, SAMPLE_RATE)
    return frame


# --- a local file ----------------------------------------------------------------------------


def _fit(width: int, height: int, max_width: int = 1280, max_height: int = 720) -> tuple[int, int]:
    # Larger pictures would not encode in real time on a small machine; H.264 wants even sizes.
    scale = min(1.0, max_width / width, max_height / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _constant_rate(rate: Fraction | None) -> int:
    return min(60, max(1, round(rate))) if rate else 30


class _Clock:
    """Where the output stands: the next video frame and audio sample to emit."""

    def __init__(self, fps: int) -> None:
        self.fps = fps
        self.frame = 0
        self.sample = 0

    def video_time(self) -> Fraction:
        return Fraction(self.frame, self.fps)

    def audio_time(self) -> Fraction:
        return Fraction(self.sample, SAMPLE_RATE)


def _file_frames(
    path: Path, width: int, height: int, fps: int, loop: bool, seconds: float
) -> Iterator[Frame]:
    clock = _Clock(fps)
    resampler = av.AudioResampler(
        format="fltp", layout="stereo", rate=SAMPLE_RATE, frame_size=AUDIO_FRAME_SAMPLES
    )
    while True:
        played = clock.frame
        yield from _one_pass(path, width, height, clock, resampler, seconds)
        # A file with no frame to give would loop for ever without making progress.
        if not loop or clock.frame == played or clock.video_time() >= seconds:
            break
        # Audio and video may end apart: the next pass starts where both have got to (audio
        # may stay up to half a picture ahead, which is less than a frame of it).
        clock.frame = max(clock.frame, round(clock.audio_time() * fps))
        yield from _silence_until(clock)


def _one_pass(
    path: Path,
    width: int,
    height: int,
    clock: _Clock,
    resampler: av.AudioResampler,
    seconds: float,
) -> Iterator[Frame]:
    start = clock.frame
    with av.open(str(path)) as container:
        has_audio = bool(container.streams.audio)
        streams = [container.streams.video[0], *container.streams.audio[:1]]
        first_time: float | None = None
        for decoded in container.decode(*streams):
            if isinstance(decoded, av.AudioFrame):
                yield from _resampled(decoded, clock, resampler)
                continue
            if not isinstance(decoded, av.VideoFrame) or decoded.time is None:
                continue
            first_time = decoded.time if first_time is None else first_time
            # Constant frame rate: each output frame shows the latest picture of its instant.
            slot = start + round((decoded.time - first_time) * clock.fps)
            picture = decoded.reformat(width=width, height=height, format="yuv420p")
            while clock.frame <= slot and clock.video_time() < seconds:
                yield _video_frame(picture, clock)
                if not has_audio:
                    yield from _silence_until(clock)
            if clock.video_time() >= seconds:
                return


def _video_frame(picture: av.VideoFrame, clock: _Clock) -> av.VideoFrame:
    # The same picture may be sent again to fill a gap: the encoder keeps its own reference to
    # what it was given, so only the timestamp changes.
    picture.pts = clock.frame
    picture.time_base = Fraction(1, clock.fps)
    clock.frame += 1
    return picture


def _resampled(
    frame: av.AudioFrame, clock: _Clock, resampler: av.AudioResampler
) -> Iterator[av.AudioFrame]:
    # The file's own audio timestamps are not kept: its audio is laid end to end from where
    # the output stands, which keeps the encoder's input gapless.
    frame.pts = None
    for out in resampler.resample(frame):
        if out.samples != AUDIO_FRAME_SAMPLES:
            continue  # a short tail would have to be the very last frame of the stream
        out.pts = clock.sample
        out.time_base = Fraction(1, SAMPLE_RATE)
        clock.sample += out.samples
        yield out


def _silence_until(clock: _Clock) -> Iterator[av.AudioFrame]:
    while clock.audio_time() < clock.video_time():
        yield _audio_frame(_SILENCE, clock.sample)
        clock.sample += AUDIO_FRAME_SAMPLES
