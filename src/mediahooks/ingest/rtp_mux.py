"""A WebRTC publisher's media as one MPEG-TS byte stream, the input of the live path.

H.264 access units are muxed as they came (no decoding); Opus audio, decoded by aiortc, is
encoded to AAC (MPEG-TS and MP4 clips take AAC everywhere; audio is cheap). Both are put on one
90 kHz clock: each track's RTP clock starts where the wall clock was when its first frame
arrived, which keeps them within the arrival jitter of each other (a few tens of ms).
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import av.container
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.packet import Packet
from av.stream import Stream

VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AAC_FRAME = 1024
_TS_OPTIONS = {"mpegts_flags": "initial_discontinuity"}
# The first frame is at this much on the output clock, so that the other track, starting a
# little earlier on the wall clock, never has a negative time.
_LEAD = Fraction(1)
# Audio further than this from where the previous frame ended restarts its clock there (a
# loss, or a publisher that paused its microphone).
_AUDIO_SLIP = Fraction(1, 5)


class TsWriter:
    """Muxes frames into MPEG-TS; `take` returns the bytes written since the last call."""

    def __init__(self, audio: bool) -> None:
        self._audio_wanted = audio
        self._buffer = io.BytesIO()
        self._out: av.container.OutputContainer | None = None
        self._video: Stream | None = None
        self._aac: AudioStream | None = None
        self._resampler: AudioResampler | None = None
        self._origin: float | None = None  # wall clock (s) at output time _LEAD
        self._video_start: tuple[int, Fraction] | None = None  # (first RTP ts, its output time)
        self._last_video = -1
        self._audio_next: Fraction | None = None  # output time where the next audio frame goes
        self._audio_expected: int | None = None  # RTP ts (48 kHz) that would follow on

    @property
    def started(self) -> bool:
        return self._out is not None

    def video(self, data: bytes, rtp_timestamp: int, keyframe: bool, arrived: float) -> None:
        """An H.264 access unit (Annex B); the first must be a keyframe."""
        if self._out is None:
            if not keyframe:
                return
            self._open(data)
        assert self._out is not None and self._video is not None
        if self._video_start is None:
            self._video_start = (rtp_timestamp, self._at(arrived))
        first_ts, first_at = self._video_start
        time = first_at + Fraction(rtp_timestamp - first_ts, VIDEO_CLOCK)
        pts = round(time * VIDEO_CLOCK)
        if pts <= self._last_video:
            return  # a frame out of order: the muxer takes rising times only
        self._last_video = pts
        packet = Packet(data)
        packet.stream = self._video
        packet.time_base = Fraction(1, VIDEO_CLOCK)
        packet.pts = packet.dts = pts
        packet.is_keyframe = keyframe
        self._out.mux(packet)

    def audio(self, frame: AudioFrame, arrived: float) -> None:
        """A decoded audio frame (pts on the 48 kHz RTP clock); dropped before the first
        video keyframe, which opens the output."""
        if self._out is None or self._aac is None or self._resampler is None:
            return
        rtp = frame.pts or 0
        if self._audio_next is None or self._audio_expected is None:
            self._audio_next = self._at(arrived)
        else:
            slip = Fraction(rtp - self._audio_expected, AUDIO_RATE)
            if abs(slip) > _AUDIO_SLIP:
                self._audio_next = max(self._at(arrived), self._audio_next)
        self._audio_expected = rtp + frame.samples
        frame.pts = None
        for out in self._resampler.resample(frame):
            out.pts = round(self._audio_next * AUDIO_RATE)
            out.time_base = Fraction(1, AUDIO_RATE)
            self._audio_next += Fraction(out.samples, AUDIO_RATE)
            for packet in self._aac.encode(out):
                self._out.mux(packet)

    def take(self) -> bytes:
        data = self._buffer.getvalue()
        if data:
            self._buffer.seek(0)
            self._buffer.truncate()
        return data

    def close(self) -> bytes:
        """Flush the encoder and the muxer; the last bytes."""
        if self._out is not None:
            if self._aac is not None:
                for packet in self._aac.encode(None):
                    self._out.mux(packet)
            self._out.close()
            self._out = None
        return self.take()

    def _at(self, arrived: float) -> Fraction:
        if self._origin is None:
            self._origin = arrived
        return _LEAD + Fraction(arrived - self._origin).limit_denominator(VIDEO_CLOCK)

    def _open(self, keyframe: bytes) -> None:
        """Open the output, its video stream described by the first keyframe's parameter
        sets (the H.264 parser reads them: size, profile)."""
        with av.open(io.BytesIO(keyframe), "r", format="h264") as probe:
            template = probe.streams.video[0]
            self._out = av.open(self._buffer, "w", format="mpegts", options=_TS_OPTIONS)
            self._video = self._out.add_stream_from_template(template)
        self._video.time_base = Fraction(1, VIDEO_CLOCK)
        if self._audio_wanted:
            aac = self._out.add_stream("aac", rate=AUDIO_RATE)
            aac.layout = "stereo"
            aac.bit_rate = 128_000
            self._aac = aac
            self._resampler = AudioResampler(
                format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=AAC_FRAME
            )
