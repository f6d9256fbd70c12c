"""The WHIP door's pure parts: frames with their RTP sequence numbers through aiortc's
reassembly, a loss dropping everything up to the next keyframe, offers read, ICE settings
parsed."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from mediahooks.api.whip import _links
from mediahooks.config import IceServer, addresses, port_range
from mediahooks.ingest.rtp_frames import Continuity, Frame, SpanningJitterBuffer, is_keyframe
from mediahooks.ingest.whip import read_offer

KEY = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x68\xce" + b"\x00\x00\x00\x01\x65\x88"
DELTA = b"\x00\x00\x00\x01\x41\x9a"


def packets(frames: list[bytes], per_frame: int = 2, first_seq: int = 65530) -> list[RtpPacket]:
    """Each frame split over ``per_frame`` packets, sequence numbers wrapping past 65535."""
    out = []
    seq = first_seq
    for index, data in enumerate(frames):
        step = -(-len(data) // per_frame)
        for part in range(per_frame):
            packet = RtpPacket(sequence_number=seq % 65536, timestamp=index * 3000)
            packet._data = data[part * step : (part + 1) * step]  # type: ignore[attr-defined]
            out.append(packet)
            seq += 1
    return out


def reassemble(sent: list[RtpPacket], capacity: int = 16) -> list[Frame]:
    buffer = SpanningJitterBuffer(capacity=capacity, is_video=True)
    frames = []
    for packet in sent:
        _, frame = buffer.add(packet)
        if frame is not None:
            assert isinstance(frame, Frame)
            frames.append(frame)
    return frames


def test_frames_carry_their_sequence_numbers_across_the_wrap() -> None:
    frames = reassemble(packets([KEY, DELTA, DELTA, KEY]))
    assert [f.data for f in frames] == [KEY, DELTA, DELTA]  # the last waits for a next one
    assert [(f.first, f.last) for f in frames] == [(65530, 65531), (65532, 65533), (65534, 65535)]
    continuity = Continuity()
    assert [continuity.accept(f) for f in frames] == [True, True, True]
    assert continuity.gaps == 0


def test_a_lost_packet_drops_every_frame_up_to_the_next_keyframe() -> None:
    stream = [KEY, DELTA, DELTA] + [DELTA] * 8 + [KEY] + [DELTA] * 12
    sent = packets(stream)
    lost = sent[:7] + sent[8:]  # the second half of the fourth frame never comes
    frames = reassemble(lost)
    continuity = Continuity()
    accepted = [f.data for f in frames if continuity.accept(f)]
    # Before the loss: the first three frames; after it, nothing until the keyframe.
    assert accepted[:3] == [KEY, DELTA, DELTA]
    assert accepted[3] == KEY
    assert all(data == DELTA for data in accepted[4:])
    assert continuity.gaps == 1
    assert len(frames) > len(accepted)  # frames were reassembled, and dropped


def test_a_hole_is_given_up_on_after_the_wait_not_when_the_buffer_is_full() -> None:
    now = [0.0]
    buffer = SpanningJitterBuffer(capacity=512, is_video=True, max_wait=0.5, clock=lambda: now[0])
    stream = [KEY, DELTA, DELTA, DELTA, DELTA, KEY, DELTA, DELTA]
    sent = packets(stream)
    del sent[6]  # the first half of the fourth frame, never retransmitted
    out: list[Frame] = []
    asks = 0
    for packet in sent:
        now[0] += 0.1  # a slow stream: 10 packets a second
        ask, frame = buffer.add(packet)
        asks += ask
        if frame is not None:
            assert isinstance(frame, Frame)
            out.append(frame)
    # 8 frames of 2 packets, 15 packets: far from 512, so only the wait ends the stall.
    assert buffer.skipped == 1 and asks == 1
    continuity = Continuity()
    accepted = [f.data for f in out if continuity.accept(f)]
    # The frame just before the hole goes with it (without the next frame's first packet, its
    # end is not known); then nothing until the keyframe.
    assert accepted == [KEY, DELTA, KEY, DELTA]
    assert continuity.gaps == 1


def test_nothing_is_accepted_before_a_keyframe() -> None:
    frames = reassemble(packets([DELTA, DELTA, KEY, DELTA, DELTA]))
    continuity = Continuity()
    assert [continuity.accept(f) for f in frames] == [False, False, True, True]
    assert is_keyframe(KEY) and not is_keyframe(DELTA)
    assert not is_keyframe(b"\x00\x00\x00\x01\x65\x88")  # an IDR without its parameter sets


OFFER = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
t=0 0
m=audio 9 UDP/TLS/RTP/SAVPF 111
a=sendonly
a=rtpmap:111 opus/48000/2
m=video 9 UDP/TLS/RTP/SAVPF 96 102
a=sendonly
a=rtpmap:96 VP8/90000
a=rtpmap:102 H264/90000
a=fmtp:102 packetization-mode=1;profile-level-id=42e01f
"""


def test_offers() -> None:
    offer = read_offer(OFFER)
    assert offer.video and offer.audio
    assert offer.codec == "h264"  # preferred over the VP8 offered first: MP4 clips
    assert not read_offer(OFFER.split("m=audio")[0] + "m=video" + OFFER.split("m=video")[1]).audio
    assert read_offer(OFFER.replace("H264", "VP9")).codec == "vp8"  # WebM clips
    with pytest.raises(ValueError, match=r"send H\.264 \(packetization-mode 1\) or VP8"):
        read_offer(OFFER.replace("H264", "VP9").replace("VP8", "AV1"))
    with pytest.raises(ValueError, match="send Opus"):
        read_offer(OFFER.replace("opus", "PCMU"))
    with pytest.raises(ValueError, match="no video"):
        read_offer(OFFER.split("m=video")[0])
    with pytest.raises(ValueError, match="not an SDP offer"):
        read_offer("GET / HTTP/1.1")


def test_settings_and_headers() -> None:
    assert port_range("") is None and port_range("0") is None
    assert port_range("40000-40099") == (40000, 40099)
    assert port_range("5000") == (5000, 5000)
    for bad in ("9-1", "x", "70000", "-5"):
        with pytest.raises(ValueError, match="MEDIAHOOKS_WEBRTC_PORTS"):
            port_range(bad)
    assert addresses(" 127.0.0.1, ::1 ,") == ["127.0.0.1", "::1"]
    with pytest.raises(ValueError, match="MEDIAHOOKS_WEBRTC_ADDRESSES"):
        addresses("example.com")
    servers = [
        IceServer(urls=["stun:a.example:3478", "stun:b.example"]),
        IceServer(urls="turn:t.example", username='u"1', credential="p"),
    ]
    assert _links(servers) == [
        '<stun:a.example:3478>; rel="ice-server"',
        '<stun:b.example>; rel="ice-server"',
        '<turn:t.example>; rel="ice-server"; username="u\\"1"; credential="p"; '
        'credential-type="password"',
    ]
