"""Real media for tests and benches, synthesized with PyAV: a moving gradient and a 440 Hz tone,
H.264 (libx264) with a keyframe every second and AAC, cut into 1 s HLS segments the way a
publisher's ffmpeg writes them (MPEG-TS, or fMP4 with an init segment).

No numpy here: pictures are built from byte slices of one precomputed ramp, which is fast enough
for 720p.
"""

from __future__ import annotations

import array
import math
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av

from mediahooks.media.cutter import Segment
from mediahooks.media.hls import parse_playlist

SAMPLE_RATE = 48_000
TONE_HZ = 440  # a whole number of cycles per second, so a one-second buffer loops seamlessly
DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class Segments(list[Segment]):
    """The segments of one timeline, in order, plus where their init segment and playlist are."""

    def __init__(self, segments: list[Segment], init_path: str | None, playlist_path: str) -> None:
        super().__init__(segments)
        self.init_path = init_path
        self.playlist_path = playlist_path


def lavfi_input(size: str) -> list[str]:
    """ffmpeg's input options for a test picture of ``size`` at 30 fps and a 440 Hz tone: what
    every publisher of the tests sends."""
    return [
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
        "-f", "lavfi", "-i", f"sine=frequency={TONE_HZ}:sample_rate={SAMPLE_RATE}",
    ]  # fmt: skip


def h264_aac_file(path: Path, seconds: float, size: str) -> Path:
    """An H.264/AAC file of the test signal, made with the ffmpeg command line."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("the ffmpeg command line is required (Debian package `ffmpeg`)")
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", *lavfi_input(size), "-t", f"{seconds:g}",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def make_segments(
    directory: str | Path,
    seconds: int,
    kind: Literal["ts", "fmp4"] = "ts",
    start_ms: int = DEFAULT_START_MS,
    width: int = 320,
    height: int = 180,
    fps: int = 30,
    bitrate: int | None = None,
    grain: float = 0.0,
) -> Segments:
    """Write `seconds` of media as 1 s HLS segments (and `index.m3u8`) into `directory`.

    Segment start times follow on from `start_ms` by the playlist's EXTINF durations, as the
    ingest derives them from EXT-X-PROGRAM-DATE-TIME. `bitrate` and `grain` (the share of each
    picture that is noise) make the video as heavy as a real stream, for benches.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    playlist = directory / "index.m3u8"
    if kind == "ts":
        # The hls muxer writes the segments straight from the encoder, as a live publisher does.
        options = {"hls_time": "1", "hls_list_size": "0", "hls_flags": "program_date_time"}
        write_media(str(playlist), "hls", seconds, width, height, fps, bitrate, grain, options)
        init_path = None
    else:
        source = directory / "source.mp4"
        write_media(str(source), "mp4", seconds, width, height, fps, bitrate, grain)
        ffmpeg_hls_fmp4(source, playlist)
        source.unlink()
        init_path = str(directory / "init.mp4")
    return Segments(segments_from_playlist(playlist, start_ms), init_path, str(playlist))


def segments_from_playlist(playlist: Path, start_ms: int) -> list[Segment]:
    parsed = parse_playlist(playlist.read_text())
    segments = []
    elapsed = 0.0
    for entry in parsed.entries:
        segments.append(
            Segment(
                path=str(playlist.parent / entry.uri),
                start_ms=start_ms + round(elapsed * 1000),
                duration_ms=round(entry.duration * 1000),
            )
        )
        elapsed += entry.duration
    return segments


def ffmpeg_hls_fmp4(source: Path, playlist: Path, *extra: str) -> None:
    """Re-segment `source` into fMP4 HLS with the ffmpeg command line, without re-encoding."""
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy", "-f", "hls"),
            *("-hls_segment_type", "fmp4", "-hls_time", "1", "-hls_list_size", "0", *extra),
            str(playlist),
        ],
        check=True,
    )


def write_media(
    path: str,
    format: str,
    seconds: int,
    width: int = 320,
    height: int = 180,
    fps: int = 30,
    bitrate: int | None = None,
    grain: float = 0.0,
    options: dict[str, str] | None = None,
) -> None:
    """Encode `seconds` of gradient and tone into one container (or the hls muxer's files)."""
    with av.open(path, "w", format=format, options=options or {}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # A keyframe exactly every second and nowhere else, as publishers are told to send, and
        # B-frames (OBS's default) so that decode order differs from presentation order.
        params = f"keyint={fps}:min-keyint={fps}:scenecut=0:bframes=2"
        video.codec_context.options = {"preset": "ultrafast", "x264-params": params}
        if bitrate:
            video.codec_context.bit_rate = bitrate
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        pictures = _Pictures(width, height, grain)
        tone = _tone_second()
        audio_samples = 0
        for index in range(seconds * fps):
            out.mux(video.encode(pictures.frame(index, fps)))
            # Keep the audio level with the video so the muxer interleaves them as it would live.
            while audio_samples < (index + 1) * SAMPLE_RATE // fps:
                out.mux(audio.encode(_audio_frame(tone, audio_samples)))
                audio_samples += 1024
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


class _Pictures:
    """A diagonal gradient sliding by a few pixels a frame, optionally over fixed-seed noise."""

    def __init__(self, width: int, height: int, grain: float) -> None:
        self.width, self.height = width, height
        self.ramp = bytes(i & 0xFF for i in range(width + height + 4096))
        self.noise_rows = int(height * grain)
        self.noise = os.urandom(width * (self.noise_rows + 64)) if self.noise_rows else b""

    def frame(self, index: int, fps: int) -> av.VideoFrame:
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        shift = (index * 4) % 256
        rows = [self.ramp[y + shift : y + shift + self.width] for y in range(self.height)]
        if self.noise_rows:
            # A different window of the noise each frame, so every frame costs bits to encode.
            offset = (index * 7919) % (64 * self.width)
            noise = self.noise[offset : offset + self.noise_rows * self.width]
            rows[: self.noise_rows] = [
                noise[r * self.width : (r + 1) * self.width] for r in range(self.noise_rows)
            ]
        _fill(frame.planes[0], rows)
        chroma = bytes([(64 + index) & 0xFF]) * (self.width // 2)
        for plane in frame.planes[1:]:
            _fill(plane, [chroma] * (self.height // 2))
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        return frame


def _fill(plane: av.video.plane.VideoPlane, rows: list[bytes]) -> None:
    padding = b"\0" * (plane.line_size - len(rows[0]))
    plane.update(b"".join(row + padding for row in rows) if padding else b"".join(rows))


def _tone_second() -> bytes:
    samples = array.array(
        "f", (0.2 * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE) for i in range(SAMPLE_RATE))
    )
    return samples.tobytes() * 2  # twice, so a 1024-sample window never runs off the end


def _audio_frame(tone: bytes, first_sample: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
    start = (first_sample % SAMPLE_RATE) * 4
    window = tone[start : start + 1024 * 4]
    for plane in frame.planes:
        plane.update(window)
    frame.sample_rate = SAMPLE_RATE
    frame.pts = first_sample
    frame.time_base = Fraction(1, SAMPLE_RATE)
    return frame
