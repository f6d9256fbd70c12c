"""RTMP's wire: the handshake and the chunk stream (Adobe's "Real-Time Messaging Protocol"
specification, December 2012; section numbers below are that document's). Pure: bytes in,
messages out, and back.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

# §5.2.2 C0/S0: the version. 3 is plain RTMP; 6 would be RTMPE, which we do not speak.
VERSION = 3
HANDSHAKE_SIZE = 1536  # §5.2.3 C1/S1, §5.2.4 C2/S2

# §5.4 protocol control messages, §6.2 user control, §7.1 the others
SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL = 1, 2, 3, 4
WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 5, 6
AUDIO, VIDEO = 8, 9
DATA_AMF3, COMMAND_AMF3, DATA_AMF0, COMMAND_AMF0, AGGREGATE = 15, 17, 18, 20, 22
STREAM_BEGIN = 0  # §7.1.7 user control event

DEFAULT_CHUNK_SIZE = 128  # §5.4.1: until a Set Chunk Size says otherwise
MAX_CHUNK_SIZE = 0xFFFFFF  # larger than any message: a bigger one is pointless
MAX_MESSAGE = 0xFFFFFF  # §5.3.1.2.1: the message length field has three bytes
_EXTENDED = 0xFFFFFF  # §5.3.1.3: the timestamp field says "look at the extended timestamp"
_HEADER_SIZES = (11, 7, 3, 0)  # §5.3.1.2: message header size by chunk type 0..3


class ProtocolError(ValueError):
    """The peer broke the protocol; the connection cannot go on."""


def server_hello(c1: bytes) -> bytes:
    """S0, S1 and S2 in answer to C1 (§5.2.3-§5.2.4): S1 is our time, four zero bytes (the
    plain handshake, not the digest variant) and random bytes; S2 echoes C1."""
    if len(c1) != HANDSHAKE_SIZE:
        raise ProtocolError(f"C1 is {HANDSHAKE_SIZE} bytes, not {len(c1)}")
    uptime = int(time.monotonic() * 1000) & 0xFFFFFFFF
    s1 = uptime.to_bytes(4, "big") + b"\0\0\0\0" + os.urandom(HANDSHAKE_SIZE - 8)
    return bytes([VERSION]) + s1 + c1


@dataclass(frozen=True)
class Message:
    """§6.1: one message, reassembled from its chunks."""

    type_id: int
    stream_id: int
    timestamp: int  # ms, 32 bits
    payload: bytes


@dataclass
class _ChunkStream:
    """What a chunk stream's later chunks leave out (§5.3.1.2): the last header's fields."""

    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    body: bytearray = field(default_factory=bytearray)  # the message being reassembled


class ChunkReader:
    """Chunks in, whole messages out (§5.3). Set Chunk Size and Abort (§5.4.1-§5.4.2) are
    applied here, since they change how the very next chunk is read."""

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._buf = bytearray()
        self._streams: dict[int, _ChunkStream] = {}

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        pos = 0
        while True:
            used = self._chunk(pos, out)
            if not used:
                break
            pos += used
        del self._buf[:pos]
        return out

    def _chunk(self, pos: int, out: list[Message]) -> int:
        """Read the chunk at ``pos``: the bytes it took, or 0 when it is not all here yet.
        Nothing changes until the whole chunk is here, so a chunk cut short is read again."""
        buf, end = self._buf, len(self._buf)
        if pos >= end:
            return 0
        # §5.3.1.1 basic header: 2-bit type, chunk stream id in 1, 2 or 3 bytes
        fmt, csid = buf[pos] >> 6, buf[pos] & 0x3F
        at = pos + 1
        if csid == 0:
            if end < at + 1:
                return 0
            csid, at = 64 + buf[at], at + 1
        elif csid == 1:
            if end < at + 2:
                return 0
            csid, at = 64 + buf[at] + buf[at + 1] * 256, at + 2
        if end < at + _HEADER_SIZES[fmt]:
            return 0
        stream = self._streams.get(csid)
        if stream is None:
            if fmt != 0:
                raise ProtocolError(f"chunk stream {csid} starts without a full (type 0) header")
            stream = self._streams[csid] = _ChunkStream()
        # §5.3.1.2 message header
        stamp, length, type_id, stream_id = 0, stream.length, stream.type_id, stream.stream_id
        if fmt < 3:
            stamp = int.from_bytes(buf[at : at + 3], "big")
        if fmt < 2:
            length = int.from_bytes(buf[at + 3 : at + 6], "big")
            type_id = buf[at + 6]
        if fmt == 0:
            stream_id = int.from_bytes(buf[at + 7 : at + 11], "little")
        at += _HEADER_SIZES[fmt]
        # §5.3.1.3 extended timestamp; a type 3 chunk carries one when its stream's last header
        # did (as ffmpeg, OBS and the specification's errata do).
        extended = stamp == _EXTENDED if fmt < 3 else stream.extended
        if extended:
            if end < at + 4:
                return 0
            stamp = int.from_bytes(buf[at : at + 4], "big")
            at += 4
        starting = fmt < 3 or not stream.body
        if length > MAX_MESSAGE:
            raise ProtocolError(f"a message of {length} bytes")
        have = 0 if fmt < 3 else len(stream.body)
        size = min(self.chunk_size, length - have)
        if end < at + size:
            return 0
        # The whole chunk is here: apply it.
        if fmt < 3 and stream.body:
            stream.body.clear()  # a new header mid-message: the old message was abandoned
        stream.length, stream.type_id, stream.stream_id = length, type_id, stream_id
        stream.extended = extended
        if fmt == 0:
            # §5.3.1.2.4: a type 3 chunk after a type 0 takes the type 0's timestamp as delta.
            stream.timestamp, stream.delta = stamp, stamp
        elif fmt in (1, 2):
            stream.delta = stamp
            stream.timestamp = (stream.timestamp + stamp) & 0xFFFFFFFF
        elif starting:
            stream.timestamp = (stream.timestamp + stream.delta) & 0xFFFFFFFF
        stream.body += buf[at : at + size]
        if len(stream.body) == length:
            message = Message(type_id, stream_id, stream.timestamp, bytes(stream.body))
            stream.body.clear()
            self._control(message, out)
        return at + size - pos

    def _control(self, message: Message, out: list[Message]) -> None:
        if message.type_id == SET_CHUNK_SIZE:  # §5.4.1
            size = _u32(message) & 0x7FFFFFFF
            if size < 1:
                raise ProtocolError("Set Chunk Size to 0")
            self.chunk_size = min(size, MAX_CHUNK_SIZE)
        elif message.type_id == ABORT:  # §5.4.2
            aborted = self._streams.get(_u32(message))
            if aborted is not None:
                aborted.body.clear()
        else:
            out.append(message)


def _u32(message: Message) -> int:
    if len(message.payload) < 4:
        raise ProtocolError(f"message type {message.type_id} is {len(message.payload)} bytes")
    return int.from_bytes(message.payload[:4], "big")


def chunks(csid: int, message: Message, chunk_size: int) -> bytes:
    """A message as chunks (§5.3): a type 0 chunk, then type 3 chunks for the rest."""
    if not 2 <= csid <= 63:
        raise ValueError("we send on chunk streams 2-63 (one-byte basic headers)")
    stamp = message.timestamp & 0xFFFFFFFF
    extended = stamp >= _EXTENDED
    header = (
        bytes([csid])
        + (_EXTENDED if extended else stamp).to_bytes(3, "big")
        + len(message.payload).to_bytes(3, "big")
        + bytes([message.type_id])
        + message.stream_id.to_bytes(4, "little")
    )
    more = bytes([0xC0 | csid])
    if extended:
        header += stamp.to_bytes(4, "big")
        more += stamp.to_bytes(4, "big")
    body = message.payload
    parts = [header, body[:chunk_size]]
    for offset in range(chunk_size, len(body), chunk_size):
        parts += [more, body[offset : offset + chunk_size]]
    return b"".join(parts)


# Protocol control messages (§5.4) and user control events (§6.2, §7.1.7) the server sends.
def set_chunk_size(size: int) -> Message:
    return Message(SET_CHUNK_SIZE, 0, 0, size.to_bytes(4, "big"))


def acknowledgement(received: int) -> Message:
    return Message(ACKNOWLEDGEMENT, 0, 0, (received & 0xFFFFFFFF).to_bytes(4, "big"))


def window_ack_size(size: int) -> Message:
    return Message(WINDOW_ACK_SIZE, 0, 0, size.to_bytes(4, "big"))


def set_peer_bandwidth(size: int, limit_type: int = 2) -> Message:
    return Message(SET_PEER_BANDWIDTH, 0, 0, size.to_bytes(4, "big") + bytes([limit_type]))


def stream_begin(stream_id: int) -> Message:
    payload = STREAM_BEGIN.to_bytes(2, "big") + stream_id.to_bytes(4, "big")
    return Message(USER_CONTROL, 0, 0, payload)
