"""A WebRTC publisher's VP8 and Opus as one live WebM byte stream, the input of the live path.

Neither is decoded: VP8 frames and Opus packets are muxed as they came, as the platform keeps
them (WebM clips). Both are put on one millisecond clock as `rtp_mux` does for MPEG-TS: each
track's RTP clock starts where the wall clock was at its first frame, and the stream's DateUTC
says where its timestamp 0 is on the wall clock (the live path times segments by it: the muxer
holds a cluster back until the next keyframe, so its bytes arrive late). The muxer writes live
(nowhere to seek back to) and starts a cluster at each video keyframe only, so the stream
splits into the header and clusters that each open on a keyframe (`ebml.Splitter`).
"""

from __future__ import annotations

import io
import struct
import time
from datetime import UTC, datetime
from fractions import Fraction

import av
import av.container
from av.packet import Packet
from av.stream import Stream

from mediahooks.ingest.rtp_mux import _AUDIO_SLIP, _LEAD, AUDIO_RATE, VIDEO_CLOCK

_MS = Fraction(1, 1000)
# A cluster ends at a video keyframe only: never on size or time (FFmpeg's defaults, for an
# output it cannot seek, are 32 KiB and 1 s, which would start clusters mid-picture-group).
# FFmpeg starts one at a keyframe once the open one holds 4 KiB: a lighter picture group (a
# still screen) stays in the cluster before it, which only makes that segment longer.
_OPTIONS = {
    "live": "1",
    "cluster_size_limit": str(2**30),
    "cluster_time_limit": str(2**40),
    "flush_packets": "1",
}


def is_vp8_keyframe(data: bytes) -> bool:
    """A VP8 frame a decoder can start from (RFC 6386 section 9.1: the inverse key frame bit,
    then the start code)."""
    return len(data) >= 10 and not data[0] & 1 and data[3:6] == b"\x9d\x01\x2a"


class _Sink:
    """Where the muxer writes: a stream that cannot seek, so the muxer writes it live."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


class WebmWriter:
    """Muxes VP8 frames and Opus packets; `take` returns the bytes written since the last
    call."""

    def __init__(self, audio: bool) -> None:
        self._audio_wanted = audio
        self._sink = _Sink()
        self._out: av.container.OutputContainer | None = None
        self._video: Stream | None = None
        self._opus: Stream | None = None
        self._origin: float | None = None  # wall clock (s) at output time _LEAD
        self._video_start: tuple[int, Fraction] | None = None  # (first RTP ts, its time)
        self._last = {"video": -1, "audio": -1}
        self._audio_next: Fraction | None = None  # output time of the next audio packet
        self._audio_expected: int | None = None  # RTP ts (48 kHz) that would follow on

    def video(self, data: bytes, rtp_timestamp: int, keyframe: bool, arrived: float) -> None:
        """A VP8 frame; the first must be a keyframe."""
        if self._out is None:
            if not keyframe:
                return
            self._open(data, arrived)
        if self._video_start is None:
            self._video_start = (rtp_timestamp, self._at(arrived))
        first_ts, first_at = self._video_start
        time = first_at + Fraction(rtp_timestamp - first_ts, VIDEO_CLOCK)
        self._mux(self._video, "video", data, time, keyframe)

    def audio(self, data: bytes, rtp_timestamp: int, arrived: float) -> None:
        """An Opus packet (48 kHz RTP timestamp); dropped before the first video keyframe."""
        if self._out is None or self._opus is None:
            return
        if self._audio_next is None or self._audio_expected is None:
            self._audio_next = self._at(arrived)
        else:
            slip = Fraction(rtp_timestamp - self._audio_expected, AUDIO_RATE)
            # A loss or a pause moves the clock on; jitter does not.
            self._audio_next = (
                max(self._at(arrived), self._audio_next)
                if abs(slip) > _AUDIO_SLIP
                else self._audio_next + slip
            )
        samples = _opus_samples(data)
        self._audio_expected = rtp_timestamp + samples
        self._mux(self._opus, "audio", data, self._audio_next, True)
        self._audio_next += Fraction(samples, AUDIO_RATE)

    def take(self) -> bytes:
        data = bytes(self._sink.data)
        self._sink.data.clear()
        return data

    def close(self) -> bytes:
        """End the stream (its last cluster); the last bytes."""
        if self._out is not None:
            self._out.close()
            self._out = None
        return self.take()

    def _mux(
        self, stream: Stream | None, kind: str, data: bytes, time: Fraction, key: bool
    ) -> None:
        assert self._out is not None and stream is not None
        pts = round(time / _MS)
        if pts <= self._last[kind]:
            return  # out of order: the muxer takes rising times only
        self._last[kind] = pts
        packet = Packet(data)
        packet.stream = stream
        packet.time_base = _MS
        packet.pts = packet.dts = pts
        packet.is_keyframe = key
        self._out.mux(packet)

    def _at(self, arrived: float) -> Fraction:
        if self._origin is None:
            self._origin = arrived
        return _LEAD + Fraction(arrived - self._origin).limit_denominator(1000)

    def _open(self, keyframe: bytes, arrived: float) -> None:
        """Open the output, its video stream described by the first keyframe (read as a
        one-frame IVF file: the demuxer fills in the codec's parameters). The stream's
        DateUTC is the wall-clock time of its timestamp 0: the keyframe, which arrived at
        ``arrived`` (monotonic), is shown at `_LEAD`."""
        width, height = (
            int.from_bytes(keyframe[6:8], "little") & 0x3FFF,
            int.from_bytes(keyframe[8:10], "little") & 0x3FFF,
        )
        header = struct.pack("<4sHH4sHHIIII", b"DKIF", 0, 32, b"VP80", width, height, 30, 1, 1, 0)
        ivf = header + struct.pack("<IQ", len(keyframe), 0) + keyframe
        with av.open(io.BytesIO(ivf), "r", format="ivf") as probe:
            self._out = av.open(self._sink, "w", format="webm", options=_OPTIONS)
            zero = time.time() - (time.monotonic() - arrived) - float(_LEAD)
            self._out.metadata["creation_time"] = datetime.fromtimestamp(zero, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
            self._video = self._out.add_stream_from_template(probe.streams.video[0])
        self._video.time_base = _MS
        if self._audio_wanted:
            # Opened as an encoder only for its OpusHead (the track's codec private data);
            # it encodes nothing.
            opus = self._out.add_stream("libopus", rate=AUDIO_RATE)
            opus.layout = "stereo"
            opus.time_base = _MS
            self._opus = opus


def _opus_samples(packet: bytes) -> int:
    """Samples (48 kHz) in an Opus packet, from its TOC byte (RFC 6716 section 3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        per_frame = (10, 20, 40, 60)[config & 3] * 48
    elif config < 16:  # hybrid: 10, 20 ms
        per_frame = (10, 20)[config & 1] * 48
    else:  # CELT: 2.5, 5, 10, 20 ms
        per_frame = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = packet[1] & 0x3F if len(packet) > 1 else 1
    return per_frame * frames
