"""RTMP's wire, pure: AMF0 values, chunk streams (every header type, extended timestamps, chunk
size changes, input cut anywhere), FLV framing, and where publishers put their token."""

from __future__ import annotations

import io
import struct

import av
import pytest

from mediahooks.ingest import amf0, flv, rtmp_url
from mediahooks.ingest import rtmp_chunks as wire
from mediahooks.ingest.rtmp_chunks import ChunkReader, Message, ProtocolError

# --- AMF0 --------------------------------------------------------------------------------------


def test_amf0_round_trips_what_publishers_send() -> None:
    connect = {
        "app": "v2/pub",
        "type": "nonprivate",
        "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
        "tcUrl": "rtmp://127.0.0.1:1935/v2/pub",
        "fpad": False,
        "videoCodecs": 252.0,
        "nested": {"list": [1.0, "two", None, True]},
    }
    values = ["connect", 1.0, connect, None, amf0.UNDEFINED, "x" * 70_000]
    assert amf0.decode_all(amf0.encode(*values)) == values


def test_amf0_reads_the_types_only_others_write() -> None:
    ecma = bytes([amf0.ECMA_ARRAY]) + (2).to_bytes(4, "big")
    ecma += b"\x00\x05width" + bytes([amf0.NUMBER]) + struct.pack(">d", 1280)
    ecma += b"\x00\x00" + bytes([amf0.OBJECT_END])
    date = bytes([amf0.DATE]) + struct.pack(">d", 5.0)
    date += b"\x00\x00"
    typed = bytes([amf0.TYPED_OBJECT]) + b"\x00\x01C" + b"\x00\x01a" + bytes([amf0.NULL])
    typed += b"\x00\x00" + bytes([amf0.OBJECT_END])
    assert amf0.decode_all(ecma + date + typed) == [{"width": 1280.0}, 5.0, {"a": None}]


@pytest.mark.parametrize(
    "data, message",
    [
        (amf0.encode("onMetaData")[:-3], "cut short"),
        (bytes([0x11, 0x00]), "not supported"),  # AMF3 switch inside AMF0
        (bytes([amf0.STRICT_ARRAY]) + (10**6).to_bytes(4, "big"), "strict array"),
        (bytes([amf0.STRICT_ARRAY, 0, 0, 0, 1]) * 40, "nested too deep"),
    ],
)
def test_amf0_refuses_broken_values_clearly(data: bytes, message: str) -> None:
    with pytest.raises(amf0.AmfError, match=message):
        amf0.decode_all(data)


# --- chunk streams -----------------------------------------------------------------------------


def _basic(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])


def _u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def _feed_in_pieces(data: bytes, sizes: int) -> list[Message]:
    reader = ChunkReader()
    out: list[Message] = []
    for offset in range(0, len(data), sizes):
        out += reader.feed(data[offset : offset + sizes])
    return out


def _stream_of_all_header_types() -> bytes:
    """Hand-made chunks, as a publisher would send them, with the messages they carry."""
    csid = 300  # a three-byte basic header
    body = bytes(range(256)) * 2  # 512 bytes: four 128-byte chunks
    data = b""
    # Type 0: timestamp 1000, video, message stream 1 (little-endian), split into type 3 chunks.
    data += _basic(0, csid) + _u24(1000) + _u24(len(body)) + bytes([9]) + (1).to_bytes(4, "little")
    data += body[:128]
    for part in range(1, 4):
        data += _basic(3, csid) + body[part * 128 : (part + 1) * 128]
    # Type 1: +33 ms, a shorter audio-sized message of another type.
    data += _basic(1, csid) + _u24(33) + _u24(4) + bytes([8]) + b"abcd"
    # Type 2: +33 ms again, same length and type.
    data += _basic(2, csid) + _u24(33) + b"efgh"
    # Type 3 starting a new message: the last delta again.
    data += _basic(3, csid) + b"ijkl"
    # Set Chunk Size to 4096 on the control stream, then one 512-byte message in one chunk.
    data += _basic(0, 2) + _u24(0) + _u24(4) + bytes([1]) + b"\0\0\0\0" + (4096).to_bytes(4, "big")
    data += _basic(0, 70) + _u24(5) + _u24(len(body)) + bytes([9]) + (1).to_bytes(4, "little")
    data += body
    # Extended timestamp (past 0xFFFFFF ms, 4.6 hours in), carried again by the type 3 chunk.
    big = 0x01234567
    data += _basic(0, 4) + _u24(0xFFFFFF) + _u24(5000) + bytes([9]) + (1).to_bytes(4, "little")
    data += big.to_bytes(4, "big") + bytes(4096)
    data += _basic(3, 4) + big.to_bytes(4, "big") + bytes(5000 - 4096)
    return data


EXPECTED = [
    (9, 1, 1000, 512),
    (8, 1, 1033, 4),
    (8, 1, 1066, 4),
    (8, 1, 1099, 4),
    (9, 1, 5, 512),
    (9, 1, 0x01234567, 5000),
]


@pytest.mark.parametrize("piece", [1, 7, 128, 100_000])
def test_chunks_make_messages_however_the_bytes_arrive(piece: int) -> None:
    messages = _feed_in_pieces(_stream_of_all_header_types(), piece)
    found = [(m.type_id, m.stream_id, m.timestamp, len(m.payload)) for m in messages]
    assert found == EXPECTED
    assert messages[0].payload == bytes(range(256)) * 2
    assert [m.payload for m in messages[1:4]] == [b"abcd", b"efgh", b"ijkl"]


def test_chunks_we_send_read_back_including_extended_timestamps() -> None:
    sent = [
        Message(20, 0, 0, b"x" * 300),
        Message(9, 1, 0xFFFFFF + 5, b"y" * 9000),
        Message(8, 1, 77, b""),
    ]
    data = wire.chunks(3, wire.set_chunk_size(1000), 128)
    data += b"".join(wire.chunks(4, m, 1000) for m in sent)
    assert ChunkReader().feed(data) == sent


def test_a_chunk_stream_must_start_with_a_full_header() -> None:
    with pytest.raises(ProtocolError, match="chunk stream 5 starts without"):
        ChunkReader().feed(_basic(1, 5) + _u24(0) + _u24(4) + bytes([8]))


def test_abort_drops_the_message_being_reassembled() -> None:
    reader = ChunkReader()
    head = _basic(0, 6) + _u24(0) + _u24(200) + bytes([9]) + (1).to_bytes(4, "little")
    assert reader.feed(head + bytes(128)) == []
    abort = _basic(0, 2) + _u24(0) + _u24(4) + bytes([2]) + b"\0\0\0\0" + (6).to_bytes(4, "big")
    assert reader.feed(abort) == []
    again = _basic(0, 6) + _u24(9) + _u24(3) + bytes([8]) + (1).to_bytes(4, "little") + b"new"
    assert reader.feed(again) == [Message(8, 1, 9, b"new")]


def test_the_handshake_answer_echoes_c1() -> None:
    c1 = bytes(range(256)) * 6
    answer = wire.server_hello(c1)
    assert answer[0] == 3 and len(answer) == 1 + 2 * 1536
    assert answer[5:9] == b"\0\0\0\0"  # the plain handshake, not the digest one
    assert answer[1 + 1536 :] == c1
    with pytest.raises(ProtocolError):
        wire.server_hello(c1[:100])


# --- FLV ---------------------------------------------------------------------------------------


def test_flv_tags_from_rtmp_messages_demux() -> None:
    """An AAC sequence header and frames framed as tags: FFmpeg's own FLV demuxer reads them
    back with their timestamps."""
    asc = bytes([0x12, 0x10])  # AAC-LC, 44.1 kHz, stereo
    data = flv.header() + flv.tag(flv.AUDIO, 0, bytes([0xAF, 0x00]) + asc)
    for n in range(1, 6):
        data += flv.tag(flv.AUDIO, n * 23, bytes([0xAF, 0x01]) + bytes(20))
    with av.open(io.BytesIO(data), "r", format="flv") as container:
        packets = [p for p in container.demux() if p.size]
        assert container.streams.audio[0].codec_context.name == "aac"
        assert [p.pts for p in packets] == [23, 46, 69, 92, 115]
    with pytest.raises(ValueError):
        flv.tag(flv.VIDEO, 0, bytes(flv.MAX_BODY + 1))


# --- where the token is ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "app, tc_url, name, expected",
    [
        # rtmp://HOST/v2/pub/cam?token=T, as ffmpeg and GStreamer split it
        ("v2/pub", "rtmp://h:1935/v2/pub", "cam?token=T", ("cam", "T")),
        # OBS: server rtmp://HOST/v2/pub, stream key cam?token=T
        ("v2/pub", "rtmp://h/v2/pub", "cam?token=T&x=1", ("cam", "T")),
        # the token in the application or the tcUrl
        ("v2/pub?token=T", "rtmp://h/v2/pub?token=T", "cam", ("cam", "T")),
        ("v2/pub", "rtmp://h/v2/pub?token=T", "cam", ("cam", "T")),
        ("v2/pub", "rtmp://h/v2/pub", "cam", ("cam", "")),
    ],
)
def test_the_stream_and_token_are_found_in_every_url_form(
    app: str, tc_url: str, name: str, expected: tuple[str, str]
) -> None:
    found = rtmp_url.target(app, tc_url, name)
    assert (found.stream, found.token) == expected


def test_the_application_is_compared_without_query_or_slashes() -> None:
    assert rtmp_url.app_name("/v2/pub/?token=x") == "v2/pub"
    assert rtmp_url.app_name("live") != rtmp_url.APP
