"""VP8 and Opus into live WebM (`webm_mux`) and back out as a header and clusters (`ebml`):
real frames from libvpx and libopus (PyAV), the pieces read back by FFmpeg's demuxer."""

from __future__ import annotations

import io
import itertools
import time
from fractions import Fraction

import av
import pytest
from av.video.frame import PictureType

from mediahooks.ingest import ebml
from mediahooks.ingest.webm_mux import WebmWriter, _opus_samples, is_vp8_keyframe
from mediahooks.media import formats
from mediahooks.media.synthetic import _TestCard

FPS = 30
GOP = 30  # a keyframe a second


def vp8_frames(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 160, 120, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.gop_size = 10 * GOP
    # Keyframes where asked only (libvpx in real time would place its own as it sees fit).
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "kf-max-dist": str(10 * GOP)}
    card = _TestCard(160, 120)
    frames = []
    for i in range(count):
        picture = card.frame(i, FPS)  # moving: every second of it weighs more than 4 KiB,
        picture.pts = i  # so FFmpeg starts a cluster at each keyframe
        if i % GOP == 0:
            picture.pict_type = PictureType.I
        frames += [bytes(p) for p in encoder.encode(picture)]
    frames += [bytes(p) for p in encoder.encode(None)]
    return frames


def opus_packets(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = Fraction(1, 48000)
    packets = []
    for i in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.sample_rate, frame.pts = 48000, i * 960
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def stream(seconds: int) -> bytes:
    """``seconds`` of VP8 and Opus through the writer, as the WHIP door feeds it."""
    writer = WebmWriter(audio=True)
    video, audio = vp8_frames(seconds * FPS), opus_packets(seconds * 50)
    out = b""
    events = [(i / FPS, "v", i) for i in range(len(video))]
    events += [(i / 50, "a", i) for i in range(len(audio))]
    for at, kind, i in sorted(events):
        if kind == "v":
            writer.video(video[i], i * 3000, is_vp8_keyframe(video[i]), 100.0 + at)
        else:
            writer.audio(audio[i], i * 960, 100.0 + at)
        out += writer.take()
    return out + writer.close()


def test_the_stream_splits_into_a_header_and_clusters_opening_on_keyframes() -> None:
    wall_minus_monotonic = time.time() - time.monotonic()
    data = stream(4)
    splitter = ebml.Splitter()
    clusters = [c for i in range(0, len(data), 777) for c in splitter.feed(data[i : i + 777])]
    assert splitter.header is not None and splitter.video_track is not None
    # DateUTC: the wall clock of timestamp 0, a second before the first keyframe (which
    # "arrived" at monotonic 100.0), however late the muxer handed its cluster out.
    assert splitter.date_ms is not None
    expected = (wall_minus_monotonic + 100.0 - 1) * 1000
    assert abs(splitter.date_ms - expected) <= 5
    assert formats.sniff(splitter.header) == "webm"
    assert all(formats.sniff(c.data) == "cluster" for c in clusters)
    assert [c.keyframe for c in clusters] == [True] * 4  # one per second, at each keyframe only
    times = [c.time_ms for c in clusters]
    assert [b - a for a, b in itertools.pairwise(times)] == [1000] * 3
    assert times[0] == 1000  # the writer's clock starts at 1 s
    assert splitter.header + b"".join(c.data for c in clusters) == data
    # The header and any run of clusters is a WebM stream FFmpeg reads: both tracks, the time
    # of the first cluster taken.
    with av.open(io.BytesIO(splitter.header + clusters[2].data + clusters[3].data), "r") as later:
        assert {s.codec_context.name for s in later.streams} == {"vp8", "opus"}
        packets = [p for p in later.demux(later.streams.video[0]) if p.size]
        assert packets[0].is_keyframe and packets[0].pts is not None
        assert packets[0].pts * packets[0].time_base == Fraction(3)
    with av.open(io.BytesIO(splitter.header + clusters[2].data + clusters[3].data), "r") as later:
        pictures = sum(1 for _ in later.decode(video=0))
    assert pictures == len(packets) == 2 * FPS  # every picture decodes from the keyframe on


def test_garbage_is_refused_with_a_reason() -> None:
    with pytest.raises(ebml.EbmlError, match="EBML header"):
        ebml.Splitter().feed(b"\x47" * 188)
    data = stream(1)
    splitter = ebml.Splitter()
    tracks = data.index(bytes.fromhex("18538067")) + 12  # the Segment's children start here
    clusters = data.index(formats.CLUSTER_ID)
    with pytest.raises(ebml.EbmlError, match="no video track"):
        splitter.feed(data[:tracks] + data[clusters:])  # no Info, no Tracks


def test_vp8_keyframes_and_opus_durations() -> None:
    frames = vp8_frames(2)
    assert is_vp8_keyframe(frames[0]) and not is_vp8_keyframe(frames[1])
    assert not is_vp8_keyframe(b"\x00\x00\x00\x01\x65")  # H.264 is not VP8
    assert _opus_samples(opus_packets(3)[0]) == 960  # 20 ms
    assert _opus_samples(bytes([(16 << 3) | 0])) == 120  # CELT 2.5 ms, one frame
    assert _opus_samples(bytes([(1 << 3) | 3, 3])) == 3 * 960  # SILK 20 ms, three frames
